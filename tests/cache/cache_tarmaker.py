"""Build crafted tar archives in memory, entry by entry, for the extraction and layer tests."""
from __future__ import annotations

import io
import tarfile


def entry(name: str, kind: str = "file", data: bytes = b"", *, link: str = "", mode: int | None = None,
          major: int = 0, minor: int = 0, uid: int = 0, gid: int = 0, pax: dict | None = None, size: int | None = None):
    return dict(name=name, kind=kind, data=data, link=link, mode=mode, major=major, minor=minor, uid=uid, gid=gid,
                pax=pax or {}, size=size)


KINDS = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
         "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}


def make_tar(entries: list[dict], fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type = KINDS[e["kind"]]
            info.mode = e["mode"] if e["mode"] is not None else (0o755 if e["kind"] == "dir" else 0o644)
            info.uid, info.gid, info.mtime = e["uid"], e["gid"], 1_700_000_000
            info.linkname = e["link"]
            info.devmajor, info.devminor = e["major"], e["minor"]
            info.pax_headers = e["pax"]
            if e["kind"] == "file":
                info.size = len(e["data"]) if e["size"] is None else e["size"]
                tar.addfile(info, io.BytesIO(e["data"]))
            else:
                tar.addfile(info)
    return buf.getvalue()
