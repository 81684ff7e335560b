"""The build cache through a registry: machine A builds samples/node-app with --cache-to; machine
B, empty except the same base, builds it with --cache-from and every step is CACHED."""
from __future__ import annotations

import re

import pytest
import requests

from cache import gc
from cache.registry import export_cache, import_cache, pull
from cache.registry.cachesync import CACHE_CONFIG
from cache.store import Store
from corpus_paths import REPO

SAMPLE = REPO / "samples" / "node-app"


def _machine(tmp_path, name, seed):
    """A store holding only the base, pulled from the registry and named as the sample's FROM."""
    store = Store.open(str(tmp_path / name))
    store.tag("debian:bookworm", pull(store, seed.remote))
    return store


@pytest.fixture(scope="module")
def machine_a(seed, registry, tmp_path_factory):
    from builder.build import BuildOptions, build

    tmp = tmp_path_factory.mktemp("cache-a")
    store = _machine(tmp, "a", seed)
    result = build(store, BuildOptions(context_dir=str(SAMPLE), tags=("node-app",)), lambda e: None)
    ref = f"{registry.host}/cache/node-app:buildcache"
    digest = export_cache(store, ref, keys=result.cache_keys)
    return store, result, ref, digest


pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.registry, pytest.mark.debootstrap,
              pytest.mark.network, pytest.mark.slow]


def test_the_artifact_is_an_oci_manifest_with_the_cache_config(machine_a, registry):
    store, result, ref, digest = machine_a
    resp = requests.get(f"http://{registry.host}/v2/cache/node-app/manifests/buildcache",
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10)
    manifest = resp.json()
    assert resp.headers["Docker-Content-Digest"] == digest
    assert manifest["config"]["mediaType"] == CACHE_CONFIG
    built_layers = {d.digest for d in result.image.layers[1:]}  # the base's layer is not a cache entry
    assert built_layers <= {d["digest"] for d in manifest["layers"]}


def test_machine_b_builds_everything_from_the_imported_cache(machine_a, seed, tmp_path):
    from builder.build import BuildOptions, build

    _, result_a, ref, _ = machine_a
    store = _machine(tmp_path, "b", seed)
    added = import_cache(store, ref)
    assert added >= result_a.steps - 1
    events: list[dict] = []
    result = build(store, BuildOptions(context_dir=str(SAMPLE), tags=("node-app",)), events.append)
    assert result.steps == result_a.steps and result.cached == result.steps
    assert [d.digest for d in result.image.layers] == [d.digest for d in result_a.image.layers]
    assert not [e for e in events if e["kind"] == "log"]  # nothing ran
    assert gc.check(store) == []


def test_cli_cache_from(machine_a, seed, pybuild, tmp_path):
    store = _machine(tmp_path, "c", seed)
    _, result_a, ref, _ = machine_a
    out = pybuild("build", "--progress", "plain", "--cache-from", ref, "-t", "node-app", str(SAMPLE), root=store.root)
    assert out.returncode == 0, out.stderr
    assert len(re.findall(r"CACHED", out.stderr)) == result_a.steps
    assert out.stdout.strip().splitlines()[-1].startswith("sha256:")


def test_a_plain_image_is_not_a_cache(seed, clean_store):
    from cache.registry import RegistryError

    with pytest.raises(RegistryError) as err:
        import_cache(clean_store, seed.remote)
    assert "not a pybuild build cache" in str(err.value)
