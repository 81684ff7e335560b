"""debootstrap images: the cached tarball through the same commit path; one real debootstrap run."""
import pytest

from builder.debootstrap import _labels, commit_tree, debootstrap_image, default_ref
from cache.store import Store


@pytest.mark.parametrize("suite,ref", [("bookworm", "debian:bookworm"), ("noble", "ubuntu:noble")])
def test_default_ref(suite, ref):
    assert default_ref(suite) == ref


def test_commit_sets_official_config_and_same_arguments_reuse(tmp_path, base_tarball):
    store = Store.open(str(tmp_path / "store"))
    with open(base_tarball, "rb") as f:
        img = commit_tree(store, f, "debian:bookworm", _labels("bookworm", "minbase", None, None, None), "test")
    cfg = img.config["config"]
    assert cfg["Cmd"] == ["bash"] and cfg["Env"][0].startswith("PATH=")
    assert len(img.manifest["layers"]) == 1
    assert debootstrap_image(store, "bookworm").id == img.id


@pytest.mark.debootstrap
@pytest.mark.network
@pytest.mark.slow
def test_real_debootstrap(tmp_path):
    store = Store.open(str(tmp_path / "store"))
    img = debootstrap_image(store, "bookworm", "t:real")
    assert store.resolve("t:real").id == img.id
