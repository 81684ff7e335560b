"""The store the global --root (or $PYBUILD_ROOT, or the default) names, opened lazily."""
from __future__ import annotations

import typer


def open_store(ctx: typer.Context):
    from cache.store import Store

    return Store.open(ctx.obj.store_root())
