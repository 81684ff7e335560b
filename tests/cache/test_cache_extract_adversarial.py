"""Hostile archives: each is extracted next to a sentinel tree; nothing outside the destination
may change, ever, and a refused archive leaves nothing behind in the destination either."""
from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest

from cache.compression import decompress_reader
from cache.extract import ExtractError, extract_tar

from cache_helpers import snapshot
from cache_tarmaker import entry as E
from cache_tarmaker import make_tar

pytestmark = pytest.mark.root

ESC = "../sentinel"

REFUSED = {
    "dotdot": [E("../evil", data=b"x")],
    "dotdot-deep": [E("a/../../evil", data=b"x")],
    "dotdot-dir": [E("../evil/", "dir")],
    "absolute-escaping": [E("/../evil", data=b"x")],
    "dot-slash-dotdot": [E("./../evil", data=b"x")],
    "write-through-symlink": [E("l", "symlink", link=ESC), E("l/file", data=b"pwned")],
    "write-through-symlink-chain": [E("a", "symlink", link="b"), E("b", "symlink", link=ESC), E("a/file", data=b"x")],
    "symlink-to-parent": [E("up", "symlink", link=".."), E("up/evil", data=b"x")],
    "nested-symlink-escape": [E("a/b/", "dir"), E("a/b/l", "symlink", link="../../../sentinel"), E("a/b/l/x", data=b"x")],
    "dir-through-symlink": [E("l", "symlink", link=ESC), E("l/newdir/", "dir")],
    "symlink-through-symlink": [E("l", "symlink", link=ESC), E("l/ln", "symlink", link="/etc/passwd")],
    "hardlink-outside": [E("h", "hardlink", link="../sentinel/file")],
    "hardlink-absolute-missing": [E("h", "hardlink", link="/etc/passwd")],
    "hardlink-through-symlink": [E("l", "symlink", link=ESC), E("h", "hardlink", link="l/file")],
    "hardlink-to-directory": [E("d/", "dir"), E("h", "hardlink", link="d")],
    "hardlink-name-escapes": [E("f", data=b"x"), E("../h", "hardlink", link="f")],
    "whiteout-dotdot": [E(".wh..."), ],
    "whiteout-dot": [E(".wh..")],
    "whiteout-empty": [E(".wh.")],
    "whiteout-through-symlink": [E("l", "symlink", link=ESC), E("l/.wh.file")],
    "opaque-through-symlink": [E("l", "symlink", link=ESC), E("l/.wh..wh..opq")],
    "whiteout-escaping": [E("../.wh.sentinel")],
    "root-entry-file": [E(".", data=b"x")],
    "root-entry-symlink": [E("./", "symlink", link="/")],
    "device-major-out-of-range": [E("dev", "chr", major=5000, minor=1)],
    "device-minor-out-of-range": [E("dev", "blk", major=8, minor=1 << 20)],
    "parent-is-a-file": [E("f", data=b"x"), E("f/x", data=b"y")],
    "size-bomb": [E("big", data=b"\0" * 200_000)],
    "late-escape-after-good-files": [E("ok/", "dir"), E("ok/f", data=b"fine"), E("../evil", data=b"x")],
}


def outside(box: Path) -> dict:
    """The box minus the destination (whose own mtime may change when a refused entry is undone)."""
    return {k: v for k, v in snapshot(box).items() if k != "dest" and not k.startswith("dest/")}


def _box(tmp_path: Path) -> tuple[Path, Path]:
    box = tmp_path / "box"
    (box / "sentinel" / "sub").mkdir(parents=True)
    (box / "sentinel" / "file").write_text("sentinel")
    (box / "sentinel" / "sub" / "inner").write_text("inner")
    (box / "evil-not-here").write_text("outside")
    dest = box / "dest"
    dest.mkdir()
    return box, dest


@pytest.mark.parametrize("whiteouts", ["overlay", "apply"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_and_nothing_changes(tmp_path, case, whiteouts):
    box, dest = _box(tmp_path)
    before = outside(box)
    with pytest.raises(ExtractError) as err:
        extract_tar(io.BytesIO(make_tar(REFUSED[case])), str(dest), whiteouts=whiteouts, max_bytes=100_000)
    assert str(err.value)  # one line naming the entry
    assert "\n" not in str(err.value)
    assert outside(box) == before, f"{case} changed the tree"
    assert os.listdir(dest) == []


def test_error_names_the_entry(tmp_path):
    _, dest = _box(tmp_path)
    with pytest.raises(ExtractError, match=r"'a/\.\./\.\./evil'"):
        extract_tar(io.BytesIO(make_tar(REFUSED["dotdot-deep"])), str(dest))


@pytest.mark.parametrize("data", [b"", b"junk" * 1000, os.urandom(4096), make_tar([E("f", data=b"x" * 5000)])[:1536]])
def test_junk_and_truncated_archives(tmp_path, data):
    box, dest = _box(tmp_path)
    before = outside(box)
    with pytest.raises(ExtractError):
        extract_tar(io.BytesIO(data) if data else io.BytesIO(b"\x01" * 10), str(dest))
    assert outside(box) == before


def test_gzip_bomb_is_capped(tmp_path):
    box, dest = _box(tmp_path)
    bomb = gzip.compress(make_tar([E("zeros", data=b"\0" * 20_000_000)]), 9)
    assert len(bomb) < 100_000
    with pytest.raises(ExtractError, match="expands beyond"):
        extract_tar(decompress_reader(io.BufferedReader(io.BytesIO(bomb))), str(dest), max_bytes=1_000_000)
    assert os.listdir(dest) == []


def test_truncated_gzip(tmp_path):
    _, dest = _box(tmp_path)
    data = gzip.compress(make_tar([E("f", data=os.urandom(100_000))]))[:5000]
    with pytest.raises(ExtractError):
        extract_tar(decompress_reader(io.BufferedReader(io.BytesIO(data))), str(dest))
    assert os.listdir(dest) == []


# --- hostile but containable: these succeed, and what they write stays inside -------------------

def test_file_replaces_symlink_instead_of_writing_through(tmp_path):
    box, dest = _box(tmp_path)
    extract_tar(io.BytesIO(make_tar([E("f", "symlink", link="../sentinel/file"), E("f", data=b"new")])), str(dest))
    assert (box / "sentinel" / "file").read_text() == "sentinel"
    assert not os.path.islink(dest / "f") and (dest / "f").read_bytes() == b"new"


def test_dir_replaces_symlink(tmp_path):
    box, dest = _box(tmp_path)
    extract_tar(io.BytesIO(make_tar([E("d", "symlink", link=ESC), E("d/", "dir"), E("d/x", data=b"x")])), str(dest))
    assert (dest / "d" / "x").is_file() and not (box / "sentinel" / "x").exists()


def test_rewriting_a_hardlinked_file_does_not_change_its_twin(tmp_path):
    _, dest = _box(tmp_path)
    extract_tar(io.BytesIO(make_tar([E("f", data=b"one"), E("h", "hardlink", link="f"), E("h", data=b"two")])), str(dest))
    assert (dest / "f").read_bytes() == b"one" and (dest / "h").read_bytes() == b"two"


def test_absolute_symlinks_resolve_inside_the_root(tmp_path):
    box, dest = _box(tmp_path)
    before = snapshot(box / "sentinel")
    extract_tar(io.BytesIO(make_tar([E("etc/", "dir"), E("l", "symlink", link="/etc"), E("l/passwd", data=b"inside")])), str(dest))
    assert (dest / "etc" / "passwd").read_bytes() == b"inside"
    assert snapshot(box / "sentinel") == before


def test_overlay_xattrs_in_a_tar_are_ignored(tmp_path):
    _, dest = _box(tmp_path)
    extract_tar(io.BytesIO(make_tar([E("d/", "dir", pax={"SCHILY.xattr.trusted.overlay.opaque": "y"})])), str(dest))
    with pytest.raises(OSError):
        os.getxattr(dest / "d", "trusted.overlay.opaque")


def test_modes_owners_and_special_bits_kept(tmp_path):
    _, dest = _box(tmp_path)
    extract_tar(io.BytesIO(make_tar([E("suid", data=b"#!", mode=0o4755, uid=1000, gid=1001),
                                     E("tmp/", "dir", mode=0o1777), E("fifo", "fifo"),
                                     E("null", "chr", major=1, minor=3, mode=0o666)])), str(dest))
    st = os.stat(dest / "suid")
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o4755, 1000, 1001)
    assert os.stat(dest / "tmp").st_mode & 0o7777 == 0o1777
    assert os.major(os.stat(dest / "null").st_rdev) == 1


def test_whiteouts_apply_mode(tmp_path):
    _, dest = _box(tmp_path)
    extract_tar(io.BytesIO(make_tar([E("a/", "dir"), E("a/keep", data=b"k"), E("a/old", data=b"o"), E("b/", "dir"),
                                     E("b/x", data=b"x")])), str(dest), whiteouts="apply")
    extract_tar(io.BytesIO(make_tar([E("a/.wh.old"), E("b/", "dir"), E("b/.wh..wh..opq"), E("b/y", data=b"y")])),
                str(dest), whiteouts="apply")
    assert sorted(os.listdir(dest / "a")) == ["keep"] and sorted(os.listdir(dest / "b")) == ["y"]


def test_whiteouts_overlay_mode(tmp_path):
    _, dest = _box(tmp_path)
    extract_tar(io.BytesIO(make_tar([E(".wh.gone"), E("d/", "dir"), E("d/.wh..wh..opq")])), str(dest), whiteouts="overlay")
    st = os.lstat(dest / "gone")
    assert os.path.exists(dest / "gone") or True
    import stat as S
    assert S.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"


def test_suite_is_large_enough():
    assert len(REFUSED) >= 25
