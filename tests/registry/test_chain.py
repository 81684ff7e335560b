"""The issue's chain, end to end on real parts: the debootstrap base (pushed once per session by
the `seed` fixture) -> a clean store builds `FROM 127.0.0.1:PORT/debian:bookworm` (FROM pulls it)
with a RUN and a COPY -> the result is pushed -> skopeo copies it back and podman runs it."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from cache import gc
from cache.registry import push
from cache.store import Store

DOCKERFILE = """\
FROM {base}
RUN echo built-by-run > /run.txt && chmod 0600 /run.txt
COPY hello.txt /app/hello.txt
CMD ["cat", "/app/hello.txt", "/run.txt"]
"""
pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.debootstrap, pytest.mark.registry]


@pytest.fixture(scope="module")
def built(seed, registry, tmp_path_factory):
    """A clean store builds FROM the registry's base; the image is pushed as app:1."""
    from builder.build import BuildOptions, build

    work = tmp_path_factory.mktemp("chain")
    ctx = work / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=seed.remote))
    (ctx / "hello.txt").write_text("hello through the registry\n")
    store = Store.open(str(work / "store"))
    events: list[dict] = []
    result = build(store, BuildOptions(context_dir=str(ctx), tags=(f"{registry.host}/app:1",)), events.append)
    digest = push(store, result.image, f"{registry.host}/app:1")
    return store, result, events, digest, work


def test_build_from_the_registry_pulls_the_base_and_pushes_the_result(built, seed):
    store, result, events, digest, _ = built
    assert store.resolve(seed.remote).digest == seed.digest  # FROM pulled it, digest kept
    assert any(e["kind"] == "transfer" and e.get("action") == "pull" for e in events)
    assert result.image.layers[0].digest == seed.base.layers[0].digest
    assert len(result.image.layers) == 3 and digest == result.image.digest
    assert gc.check(store) == []


def test_pull_never_refuses_a_missing_base(seed, tmp_path):
    from builder.build import BuildError, BuildOptions, build

    (tmp_path / "Dockerfile").write_text(f"FROM {seed.remote}\n")
    with pytest.raises(BuildError) as err:
        build(Store.open(str(tmp_path / "s")), BuildOptions(context_dir=str(tmp_path), pull="never"))
    assert "--pull=never" in str(err.value) and "Dockerfile:1" in str(err.value)


@pytest.mark.interop
def test_skopeo_copies_it_back(built, registry):
    _, result, _, digest, work = built
    dest = work / "oci"
    out = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/app:1",
                          f"oci:{dest}:app"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    index = json.loads((dest / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest  # same bytes, same digest
    manifest = json.loads((dest / "blobs" / "sha256" / digest[7:]).read_text())
    assert manifest["config"]["digest"] == result.image.id


@pytest.mark.interop
def test_podman_runs_it(built, registry):
    import shutil
    import tempfile
    from pathlib import Path

    from foreign_tools import Podman

    # a private podman store (vfs: no mounts left behind), no network, its cgroups under a scratch
    # pybuild/ parent removed afterwards (tests/foreign_tools.py), nothing of the user's auth read
    podman = Podman(Path(tempfile.mkdtemp(prefix="pbpod-", dir="/tmp")))
    auth = podman.tmp / "auth.json"
    auth.write_text("{}")
    env = {**{k: v for k, v in os.environ.items() if k != "DOCKER_CONFIG"}, "REGISTRY_AUTH_FILE": str(auth)}
    try:
        out = podman("run", "--rm", "--network", "none", "--cgroup-parent", f"/{podman.cgroup}", "--tls-verify=false",
                     f"{registry.host}/app:1", check=False, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "hello through the registry\nbuilt-by-run\n"
    finally:
        podman.cleanup()
        shutil.rmtree(podman.tmp, ignore_errors=True)
