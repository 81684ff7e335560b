from __future__ import annotations

import pytest


@pytest.fixture
def make_build(tmp_path):
    """build(dockerfile_text, files={rel: text}, store_dir=None, **options) -> (store, result)."""
    from builder.build import BuildOptions, build
    from cache.store import Store

    def run(dockerfile: str, files: dict[str, str] | None = None, store_dir=None, ctx_dir=None, **options):
        ctx = ctx_dir or tmp_path / "ctx"
        ctx.mkdir(exist_ok=True)
        (ctx / "Dockerfile").write_text(dockerfile)
        for rel, text in (files or {}).items():
            (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
            (ctx / rel).write_text(text)
        store = Store.open(str(store_dir or tmp_path / "store"))
        events: list[dict] = []
        result = build(store, BuildOptions(context_dir=str(ctx), **options), events.append)
        return store, result, events

    return run


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, base_tarball):
    """A store directory holding the debootstrap base as debian:bookworm (for make_build's store_dir)."""
    from cache.archive import import_rootfs
    from cache.store import Store

    root = tmp_path_factory.mktemp("base") / "store"
    with open(base_tarball, "rb") as f:
        import_rootfs(Store.open(str(root)), f, ref="debian:bookworm")
    return root


@pytest.fixture
def image_file():
    """image_file(store, image, "/path") -> its text in the image's top-most layer that has it
    ("<dir>" for a directory), or None."""
    import os

    def read(store, image, path: str):
        for diff_id in reversed(image.diff_ids):
            full = os.path.join(store.unpacked_layer(diff_id), path.lstrip("/"))
            if os.path.lexists(full):
                if not os.path.isfile(full):
                    return "<dir>"
                with open(full) as f:
                    return f.read()
        return None
    return read
