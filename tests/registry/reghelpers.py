"""Helpers the registry tests share (a module, not conftest: several conftest.py files exist, and
`from conftest import` would find whichever was imported last)."""
from __future__ import annotations

import io
import tarfile

USER, PASSWORD = "alice", "s3cret-pw"


def _long_lived(request, pid: int) -> None:
    """The root conftest's leak check ignores session helpers listed in LONG_LIVED_CHILDREN."""
    for plugin in request.config.pluginmanager.get_plugins():
        children = getattr(plugin, "LONG_LIVED_CHILDREN", None)
        if isinstance(children, set):
            children.add(pid)


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tiny_image(store, ref: str | None, files: dict[str, bytes], **fields):
    """A one-layer image of a few files (fields: top-level config fields such as architecture)."""
    from cache.archive import import_rootfs

    img = import_rootfs(store, io.BytesIO(tar_of(files)), None)
    if fields:
        img = store.commit(img.with_fields(**fields))
    if ref:
        store.tag(ref, img)
    return img
