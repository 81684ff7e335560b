"""system df / check / prune: the store's health and size."""
from __future__ import annotations

import sys

import typer

from ._store import open_store

system_app = typer.Typer(help="The store as a whole.", no_args_is_help=True)




@system_app.command("df")
def df(ctx: typer.Context) -> None:
    """Disk usage: images, layers, build cache, containers."""
    from cache import gc

    from ._table import human_size, table

    u = gc.disk_usage(open_store(ctx))
    table(["TYPE", "TOTAL", "SIZE", "RECLAIMABLE"], [
        ["Images", str(u["images"]), human_size(u["blobs_bytes"]), human_size(u["reclaimable_bytes"])],
        ["Unpacked layers", str(u["unpacked_layers"]), human_size(u["unpacked_bytes"]), ""],
        ["Build cache", str(u["build_cache_entries"]), human_size(u["build_cache_bytes"]), ""],
        ["Containers", str(u["containers"]), "", ""],
    ])


@system_app.command("check")
def check(ctx: typer.Context) -> None:
    """Re-verify every blob digest and every reference; exit 1 naming what is damaged."""
    from cache import gc

    problems = gc.check(open_store(ctx))
    for p in problems:
        print(f"damaged: {p}", file=sys.stderr)
    if problems:
        raise typer.Exit(1)
    typer.echo("store is consistent")


@system_app.command("prune")
def prune(ctx: typer.Context,
          all_: bool = typer.Option(False, "-a", "--all", help="Also every image no container uses."),
          build_cache: bool = typer.Option(False, "--build-cache", help="Also drop the build-cache index."),
          force: bool = typer.Option(False, "-f", "--force", help="Accepted as docker's (pybuild never asks).")) -> None:
    """Remove <none> images, unreachable blobs and unpacked layers (gc)."""
    from cache import gc

    from ._table import human_size

    store = open_store(ctx)
    removed = gc.prune_images(store, all_images=all_)
    if build_cache or all_:
        store.build_cache.clear()
    result = gc.collect(store)
    typer.echo(f"Deleted images: {len(removed)}, blobs: {len(result.blobs)}, unpacked layers: {len(result.layers)}")
    typer.echo(f"Total reclaimed space: {human_size(result.bytes_freed)}")


def register(app: typer.Typer) -> None:
    app.add_typer(system_app, name="system")
