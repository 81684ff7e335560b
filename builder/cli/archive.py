"""save, load, import, unpack: images in and out of the store as files and directories."""
from __future__ import annotations

import sys
from typing import List

import typer

from ._store import open_store


def save(ctx: typer.Context, names: List[str] = typer.Argument(..., help="Images (tags or IDs)."),
         output: str = typer.Option(None, "-o", "--output", help="Write to FILE (default: stdout)."),
         fmt: str = typer.Option("oci", "--format", help="oci (an OCI layout) or docker (what `docker load` reads).")) -> None:
    """Write images to a tar archive."""
    from cache import archive
    from cache.reference import looks_like_id, parse_reference
    from grammar.errors import UsageError

    if fmt not in ("oci", "docker"):
        raise UsageError(f"--format {fmt!r}: use oci or docker")
    if output is None and sys.stdout.isatty():
        raise UsageError("refusing to write an archive to a terminal", hint="use -o FILE or redirect stdout")
    store = open_store(ctx)
    items = []
    for name in names:
        img = store.resolve(name)
        items.append((None if looks_like_id(name) else parse_reference(name).name, img))
    if output is None:
        archive.save(store, items, sys.stdout.buffer, fmt)
        return
    tmp = output + ".tmp"
    with open(tmp, "wb") as f:
        archive.save(store, items, f, fmt)
    import os

    os.replace(tmp, output)


def load(ctx: typer.Context, input_: str = typer.Option(..., "-i", "--input", help="An archive from save, docker save or podman save."),
         quiet: bool = typer.Option(False, "-q", "--quiet")) -> None:
    """Load images from a tar archive (OCI or Docker format)."""
    from cache import archive
    from cache.reference import parse_reference

    for ref, img in archive.load(open_store(ctx), input_):
        if not quiet:
            typer.echo(f"Loaded image: {parse_reference(ref).familiar}" if ref else f"Loaded image ID: {img.id}")


def import_(ctx: typer.Context, source: str = typer.Argument(..., help="A rootfs tarball (as `docker export` makes), or - for stdin."),
            ref: str = typer.Argument(None, help="Name for the new image."),
            change: List[str] = typer.Option([], "-c", "--change", help="CMD/ENTRYPOINT/ENV/WORKDIR/USER as JSON or text, e.g. 'CMD [\"sh\"]'.")) -> None:
    """Make a one-layer image from a filesystem tarball."""
    from cache import archive

    store = open_store(ctx)
    changes = _parse_changes(change)
    if source == "-":
        img = archive.import_rootfs(store, sys.stdin.buffer, ref, source="-", changes=changes)
    else:
        with open(source, "rb") as f:
            img = archive.import_rootfs(store, f, ref, source=source, changes=changes)
    typer.echo(img.id)


def _parse_changes(changes: list[str]) -> dict:
    import json

    from grammar.errors import UsageError

    fields = {"CMD": "Cmd", "ENTRYPOINT": "Entrypoint", "ENV": "Env", "WORKDIR": "WorkingDir", "USER": "User"}
    out: dict = {}
    for c in changes:
        word, _, rest = c.strip().partition(" ")
        key = fields.get(word.upper())
        if key is None:
            raise UsageError(f"--change {c!r}: only {', '.join(fields)} are supported")
        rest = rest.strip()
        if key in ("Cmd", "Entrypoint"):
            out[key] = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
        elif key == "Env":
            out.setdefault("Env", []).append(rest.replace(" ", "=", 1) if "=" not in rest else rest)
        else:
            out[key] = rest
    return out


def unpack(ctx: typer.Context, name: str = typer.Argument(..., help="Image (tag or ID)."),
           directory: str = typer.Argument(..., help="Where to write its flattened filesystem.")) -> None:
    """Write an image's filesystem (whiteouts applied, owners and modes kept) into DIR."""
    from cache import archive

    store = open_store(ctx)
    archive.unpack(store, store.resolve(name), directory)


def register(app: typer.Typer) -> None:
    app.command()(save)
    app.command()(load)
    app.command("import")(import_)
    app.command()(unpack)
