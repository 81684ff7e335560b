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
