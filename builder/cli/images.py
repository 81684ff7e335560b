"""images, tag, rmi, history, inspect, image prune: the store as `docker image` shows it."""
from __future__ import annotations

import json
from typing import List

import typer

from ._store import open_store




def images(ctx: typer.Context,
           quiet: bool = typer.Option(False, "-q", "--quiet", help="Only image IDs."),
           fmt: str = typer.Option("table", "--format", help="table or json.")) -> None:
    """List images: REPOSITORY TAG IMAGE ID CREATED SIZE."""
    from cache.reference import parse_reference

    from ._table import human_age, human_size, table

    rows, seen = [], set()
    listed = open_store(ctx).list_images()
    tagged = {img.digest for ref, img in listed if ref}
    for ref, img in listed:
        if ref is None and img.digest in tagged:
            continue
        r = parse_reference(ref) if ref else None
        rows.append({"Repository": r.familiar_repo if r else "<none>", "Tag": (r.tag if r else None) or "<none>",
                     "ID": img.id, "Created": img.created, "Size": img.size, "Digest": img.digest})
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif quiet:
        for row in rows:
            if row["ID"] not in seen:
                seen.add(row["ID"])
                typer.echo(row["ID"][7:19])
    else:
        table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
              [[r["Repository"], r["Tag"], r["ID"][7:19], human_age(r["Created"]), human_size(r["Size"])] for r in rows])


def tag(ctx: typer.Context, source: str = typer.Argument(..., help="Image (tag or ID)."),
        target: str = typer.Argument(..., help="New reference.")) -> None:
    """Give an image another name."""
    from cache.reference import parse_reference

    parse_reference(target)  # a bad new name is a usage error, whatever the source
    store = open_store(ctx)
    store.tag(target, store.resolve(source))


def rmi(ctx: typer.Context, names: List[str] = typer.Argument(..., help="Images (tags or IDs)."),
        force: bool = typer.Option(False, "-f", "--force", help="Remove even if a container uses it or several tags name it.")) -> None:
    """Remove images (a tag of an image with other tags only loses that tag)."""
    from cache import gc
    from cache.errors import ImageInUse, StoreError
    from cache.reference import looks_like_id, parse_reference

    store = open_store(ctx)
    for name in names:
        container = _container(store, name)
        if container is not None:  # as `docker inspect`: a container name or id, else an image
            from .containers import container_json

            out.append(container_json(container))
            continue
        img = store.resolve(name)
        tags = store.tags_of(img)
        by_name = not looks_like_id(name)
        if by_name and len(tags) > 1:
            store.untag(name)
            typer.echo(f"Untagged: {parse_reference(name).familiar}")
            continue
        if not force and img.id in store.images_in_use():
            raise ImageInUse(f"image {name} ({img.short_id}) is used by a container", hint="remove the container, or use rmi -f")
        if not by_name and len(tags) > 1 and not force:
            raise StoreError(f"image {img.short_id} is referenced by {len(tags)} tags", hint="remove the tags one by one, or use -f")
        store.remove_image(img.digest)
        for t in tags:
            typer.echo(f"Untagged: {parse_reference(t).familiar}")
        typer.echo(f"Deleted: {img.id}")
    gc.collect(store)


def history(ctx: typer.Context, name: str = typer.Argument(...),
            no_trunc: bool = typer.Option(False, "--no-trunc"), quiet: bool = typer.Option(False, "-q", "--quiet")) -> None:
    """The steps that made an image, newest first."""
    from ._table import human_age, human_size, table

    img = open_store(ctx).resolve(name)
    sizes = iter(img.layers)
    rows = []
    for i, h in enumerate(img.history):
        size = 0 if h.get("empty_layer") else next(sizes, None)
        rows.append([img.short_id if i == len(img.history) - 1 else "<missing>", human_age(h.get("created")),
                     h.get("created_by", "") if no_trunc else h.get("created_by", "")[:45],
                     human_size(size.size if size else 0), h.get("comment", "")])
    rows.reverse()
    if quiet:
        for r in rows:
            typer.echo(r[0])
        return
    table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)


def inspect(ctx: typer.Context, names: List[str] = typer.Argument(...)) -> None:
    """Docker-like JSON of containers or images."""
    from cache.reference import parse_reference

    store = open_store(ctx)
    out = []
    for name in names:
        container = _container(store, name)
        if container is not None:  # as `docker inspect`: a container name or id, else an image
            from .containers import container_json

            out.append(container_json(container))
            continue
        img = store.resolve(name)
        tags = store.tags_of(img)
        c = img.config
        out.append({
            "Id": img.id,
            "RepoTags": [parse_reference(t).familiar for t in tags],
            "RepoDigests": [f"{parse_reference(t).familiar_repo}@{img.digest}" for t in tags],
            "Created": img.created, "Author": c.get("author", ""), "Config": img.config_section,
            "Architecture": img.architecture, "Os": img.os, "Size": img.size,
            "RootFS": {"Type": "layers", "Layers": img.diff_ids}, "History": img.history,
            "Descriptor": img.manifest_descriptor.to_json() if img.manifest_descriptor else None,
        })
    typer.echo(json.dumps(out, indent=4))


def _container(store, name: str):
    from runtime.containers import lifecycle
    from runtime.containers.records import ContainerConflict, ContainerNotFound, Records

    try:
        return lifecycle.find(Records(store.root), name)
    except (ContainerNotFound, ContainerConflict):
        return None


image_app = typer.Typer(help="Manage images.", no_args_is_help=True)


@image_app.command("prune")
def image_prune(ctx: typer.Context, all_: bool = typer.Option(False, "-a", "--all", help="Every image no container uses, not only <none>.")) -> None:
    """Remove unused images and free their blobs."""
    from cache import gc

    from ._table import human_size

    store = open_store(ctx)
    removed = gc.prune_images(store, all_images=all_)
    result = gc.collect(store)
    for d in removed:
        typer.echo(f"Deleted: {d}")
    typer.echo(f"Total reclaimed space: {human_size(result.bytes_freed)}")


def register(app: typer.Typer) -> None:
    app.command()(images)
    app.command()(tag)
    app.command()(rmi)
    app.command()(history)
    app.command()(inspect)
    image_app.command("ls")(images)
    image_app.command("rm")(rmi)
    image_app.command("inspect")(inspect)
    image_app.command("history")(history)
    app.add_typer(image_app, name="image")
