"""Every sample built on debian:bookworm (the cached debootstrap base imported into a store that
the whole session shares, so the apt step runs once) and checked: config, files, owners."""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from builder.build import BuildOptions, build
from corpus_paths import REPO

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.debootstrap]
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def base_store(tmp_path_factory, base_tarball):
    from cache.archive import import_rootfs
    from cache.store import Store

    store = Store.open(str(tmp_path_factory.mktemp("samples") / "store"))
    with open(base_tarball, "rb") as f:
        import_rootfs(store, f, ref="debian:bookworm")
    return store


def _build(store, context: Path, **opts):
    events: list[dict] = []
    return build(store, BuildOptions(context_dir=str(context), **opts), events.append), events


def _members(store, image) -> dict[str, tarfile.TarInfo]:
    from cache.compression import decompress_reader

    out = {}
    for desc in image.layers:
        with store.blobs.open(desc.digest) as f, tarfile.open(fileobj=decompress_reader(f, None), mode="r|") as tar:
            for m in tar:
                out[m.name.rstrip("/")] = m
    return out


def test_scratch_sample(base_store):
    result, _ = _build(base_store, SAMPLES / "scratch", tags=("scratch-sample",))
    cfg = result.image.config_section
    assert cfg["WorkingDir"] == "/app" and cfg["Cmd"] == ["/app/hello.txt"] and "GREETING=hello" in cfg["Env"]
    names = set(_members(base_store, result.image))
    assert {"app/hello.txt", "data/one.txt"} <= names and "README.md" not in names


def test_multi_stage_sample(base_store):
    result, events = _build(base_store, SAMPLES / "multi-stage", tags=("shout",))
    members = _members(base_store, result.image)
    assert set(members) == {"shout.txt"}
    assert not any("exit 1" in e.get("text", "") for e in events)   # the unused stage was skipped
    with base_store.work_dir("check") as d:
        from cache.archive import unpack

        unpack(base_store, result.image, d)
        assert Path(d, "shout.txt").read_text() == "HELLO FROM THE BUILD STAGE\n"


@pytest.mark.network
@pytest.mark.slow
def test_node_app_sample(base_store):
    result, _ = _build(base_store, SAMPLES / "node-app", tags=("node-app",))
    cfg = result.image.config_section
    assert cfg["User"] == "node" and cfg["WorkingDir"] == "/home/node/code"
    assert cfg["Cmd"] == ["node", "index.js"] and "3000/tcp" in cfg["ExposedPorts"]
    top = _members(base_store, result.image)["home/node/code/index.js"]
    assert (top.uid, top.gid) == (1000, 1000)
    again, _ = _build(base_store, SAMPLES / "node-app")
    assert again.cached == again.steps


@pytest.mark.network
@pytest.mark.slow
def test_hello_rebuild_story(base_store, tmp_path):
    """The tutorial: 1.0, then CMD changed and built as 2.0; the apt step is cached; 1.0 unchanged."""
    ctx = tmp_path / "hello"
    shutil.copytree(SAMPLES / "hello", ctx)
    one, _ = _build(base_store, ctx, tags=("my-node-app:1.0",))
    dockerfile = ctx / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("omg hi lol", "omg hi lol 2.0"))
    two, _ = _build(base_store, ctx, tags=("my-node-app:2.0",))
    assert two.cached == 1 and two.image.diff_ids == one.image.diff_ids
    assert "omg hi lol 2.0" in base_store.resolve("my-node-app:2.0").config_section["Cmd"][-1]
    assert base_store.resolve("my-node-app:1.0").config_section["Cmd"] == ["node", "-e", 'console.log("omg hi lol")']


def _dockerfile_build(store, tmp_path, text: str, **opts):
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(text)
    return _build(store, ctx, **opts)


def test_run_network_none_has_only_loopback(base_store, tmp_path):
    _, events = _dockerfile_build(base_store, tmp_path, "FROM debian:bookworm\nRUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '\n",
                                  no_cache=True)
    assert [e["text"] for e in events if e["kind"] == "log"] == ["lo"]


def test_failed_run_names_line_command_and_exit_code(base_store, tmp_path):
    from builder.build import BuildError

    with pytest.raises(BuildError, match=r"Dockerfile:3:1: RUN .*exit 3.* failed with exit code 3"):
        _dockerfile_build(base_store, tmp_path, "FROM debian:bookworm\nENV A=1\nRUN echo out; exit 3\n")


def test_run_sees_env_and_args_and_runs_as_user(base_store, tmp_path):
    text = "FROM debian:bookworm\nARG WHO=arg\nENV WHERE=env\nUSER nobody\nWORKDIR /tmp/w\nRUN echo $WHO $WHERE $(id -un) $(pwd)\n"
    _, events = _dockerfile_build(base_store, tmp_path, text, no_cache=True)
    assert [e["text"] for e in events if e["kind"] == "log"] == ["arg env nobody /tmp/w"]
