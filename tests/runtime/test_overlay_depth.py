"""Deep layer stacks: mount(2) takes one page of options, which absolute lowerdir paths overflow
from ~35 layers on; mount_overlay names long stacks by /proc/self/fd links instead, so up to
MAX_LOWERDIRS (Docker's 128) mount, in the same order. Deeper stacks are refused by name."""
from __future__ import annotations

import os

import pytest

from runtime.mounts import MAX_LOWERDIRS, TooManyLayers, mount_overlay, mount_readonly_view


def _stack(tmp_path, n: int) -> list[str]:
    """n lowerdirs with ~150-byte paths, top-most first; each holds its own file and `who` (so the
    top one must win) and the bottom one holds `bottom`."""
    dirs = []
    for i in range(n):
        d = tmp_path / "layers" / (f"{i:03d}-" + "x" * 140)
        d.mkdir(parents=True)
        (d / f"f{i}").write_text(str(i))
        (d / "who").write_text(str(i))
        dirs.append(str(d))
    (tmp_path / "layers" / os.path.basename(dirs[-1]) / "bottom").write_text("b")
    return dirs


def test_a_stack_deeper_than_docker_allows_is_refused_with_what_to_do(tmp_path):
    lowers = [str(tmp_path)] * (MAX_LOWERDIRS + 1)
    with pytest.raises(TooManyLayers) as err:
        mount_overlay(lowers, str(tmp_path), str(tmp_path), str(tmp_path))
    assert f"{MAX_LOWERDIRS + 1} layers" in str(err.value) and "squash" in err.value.hint
    with pytest.raises(TooManyLayers):
        mount_readonly_view(lowers, str(tmp_path))


@pytest.mark.root
@pytest.mark.namespaces
@pytest.mark.parametrize("n", [2, 60, MAX_LOWERDIRS])
def test_deep_stacks_mount_in_order(tmp_path, n):
    from test_mounts_cgroups import _in_private_ns

    lowers = _stack(tmp_path, n)
    assert len("lowerdir=" + ":".join(lowers)) > 4096 or n == 2
    upper, work, merged, view = (tmp_path / s for s in ("upper", "work", "merged", "view"))
    for d in (upper, work, merged, view):
        d.mkdir()

    def go():
        mount_overlay(lowers, str(upper), str(work), str(merged))
        names = sorted(os.listdir(merged))
        seen = (open(f"{merged}/who").read(), open(f"{merged}/bottom").read(), len(names))
        open(f"{merged}/new", "w").write("n")
        root = mount_readonly_view(lowers, str(view))
        return f"{seen} {open(f'{root}/who').read()} {len(os.listdir(root))}"

    assert _in_private_ns(go) == f"('0', 'b', {n + 2}) 0 {n + 2}"
    assert os.listdir(upper) == ["new"]
