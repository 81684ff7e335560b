"""pybuild debootstrap SUITE: a Debian/Ubuntu base image made locally."""
from __future__ import annotations

import typer

from ._store import open_store


def debootstrap(ctx: typer.Context, suite: str = typer.Argument(..., help="e.g. bookworm"),
                tag: str = typer.Option(None, "-t", "--tag", help="Default debian:SUITE (ubuntu:SUITE)."),
                variant: str = typer.Option("minbase", "--variant"),
                mirror: str = typer.Option(None, "--mirror"),
                include: str = typer.Option(None, "--include", help="Comma-separated packages."),
                arch: str = typer.Option(None, "--arch"),
                no_cache: bool = typer.Option(False, "--no-cache")) -> None:
    """Run debootstrap and commit the tree as a one-layer image."""
    from builder.debootstrap import debootstrap_image

    img = debootstrap_image(open_store(ctx), suite, tag, variant=variant, mirror=mirror, include=include,
                            arch=arch, no_cache=no_cache, progress=lambda line: typer.echo(line, err=True))
    typer.echo(img.id)


def register(app: typer.Typer) -> None:
    app.command("debootstrap")(debootstrap)
