"""`pybuild build [OPTIONS] PATH`: a Dockerfile becomes a tagged image in the store."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import List, Optional

import typer


def _pairs(values: list[str], flag: str, from_env: bool) -> tuple[tuple[str, str], ...]:
    from grammar.errors import UsageError

    out = []
    for item in values or []:
        name, eq, value = item.partition("=")
        if not name:
            raise UsageError(f"{flag} {item!r}: expected NAME=VALUE")
        if not eq:
            if not from_env:
                raise UsageError(f"{flag} {item!r}: expected NAME=VALUE")
            if name not in os.environ:
                continue  # `--build-arg K` with K unset: as docker, the ARG keeps its default
            value = os.environ[name]
        out.append((name, value))
    return tuple(out)


def register(app: typer.Typer) -> None:
    @app.command("build")
    def build_cmd(
        ctx: typer.Context,
        path: str = typer.Argument(".", help="The build context directory (or - for a tar on stdin)."),
        tag: List[str] = typer.Option([], "-t", "--tag", help="Name the image (repeatable)."),
        file: Optional[str] = typer.Option(None, "-f", "--file", help="The Dockerfile (default: PATH/Dockerfile)."),
        build_arg: List[str] = typer.Option([], "--build-arg", help="NAME=VALUE, or NAME from the environment."),
        target: Optional[str] = typer.Option(None, "--target", help="Build this stage and what it needs."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Build every step again."),
        explain_cache: bool = typer.Option(False, "--explain-cache", help="Say why each step missed the cache."),
        label: List[str] = typer.Option([], "--label", help="KEY=VALUE label on the image."),
        iidfile: Optional[str] = typer.Option(None, "--iidfile", help="Write the image id to this file."),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only the image id."),
        progress: str = typer.Option("auto", "--progress", help="auto, tty, plain or json."),
        network: str = typer.Option("default", "--network",
                                    help="RUN steps' network: default (own namespace, outbound via slirp4netns), host or none."),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Also write the image: type=oci|docker,dest=FILE."),
        pull: str = typer.Option("missing", "--pull", help="FROM images: always, missing (pull if absent) or never."),
        platform: Optional[str] = typer.Option(None, "--platform", help="os/arch or os/arch/variant of pulled base images."),
        cache_from: List[str] = typer.Option([], "--cache-from", help="Import a build cache a --cache-to pushed (REF)."),
        cache_to: Optional[str] = typer.Option(None, "--cache-to", help="Push this build's cache to a registry (REF)."),
        tls_verify: Optional[str] = typer.Option(None, "--tls-verify", help="false: registries over plain http / unverified TLS."),
        explain: bool = typer.Option(False, "--explain", help="Show each kernel step of RUN steps, as commands you would type."),
    ) -> None:
        from builder.build import BuildOptions, build
        from builder.progress import renderer
        from cache.store import Store
        from grammar.errors import UsageError

        if progress not in ("auto", "tty", "plain", "json"):
            raise UsageError(f"--progress {progress!r}: use auto, tty, plain or json")
        if network not in ("default", "host", "none"):
            raise UsageError(f"--network {network!r}: use default, host or none")
        if path != "-" and not os.path.isdir(path):
            raise UsageError(f"build context {path!r} is not a directory")
        if pull not in ("always", "missing", "never"):
            raise UsageError(f"--pull={pull!r}: use always, missing or never")
        from .registry import tls_flag

        tls = tls_flag(tls_verify)
        out_fmt, out_dest = _output(output) if output else (None, None)
        sde = os.environ.get("SOURCE_DATE_EPOCH")
        store = Store.open(ctx.obj.store_root())
        with contextlib.ExitStack() as stack:
            context_dir = os.path.abspath(path) if path != "-" else stack.enter_context(_stdin_context(store))
            opts = BuildOptions(
                context_dir=context_dir, dockerfile=os.path.abspath(file) if file else None,
                tags=tuple(tag), build_args=_pairs(build_arg, "--build-arg", True), target=target,
                no_cache=no_cache, explain_cache=explain_cache, labels=_pairs(label, "--label", False),
                source_date_epoch=int(sde) if sde and sde.isdigit() else None, network=network,
                pull=pull, platform=platform, tls_verify=tls, explain=explain)
            show = renderer("quiet" if quiet else progress, sys.stderr)
            for ref in cache_from:
                from cache.registry import NotFound, import_cache

                try:
                    import_cache(store, ref, show, tls_verify=tls)
                except NotFound as err:  # as BuildKit: a cache not exported yet (first CI run) is no error
                    show({"kind": "warning", "text": f"--cache-from {ref}: {err}; building without it"})
            result = build(store, opts, show)
            if cache_to:
                from cache.registry import export_cache

                export_cache(store, cache_to, show, tls_verify=tls, keys=result.cache_keys)
        if out_dest:
            from cache.archive import save

            with open(out_dest, "wb") as f:
                save(store, [(tag[0] if tag else None, result.image)], f, fmt=out_fmt)
        if iidfile:
            with open(iidfile, "w") as f:
                f.write(result.image.id)
        for line in result.explanations:
            print(line, file=sys.stderr)
        print(result.image.id)


def _output(spec: str) -> tuple[str, str]:
    """`type=oci|docker,dest=FILE` (as docker buildx's --output)."""
    from grammar.errors import UsageError

    fields = dict(part.partition("=")[::2] for part in spec.split(","))
    if fields.get("type") not in ("oci", "docker") or not fields.get("dest"):
        raise UsageError(f"--output {spec!r}: expected type=oci|docker,dest=FILE")
    return fields["type"], fields["dest"]


@contextlib.contextmanager
def _stdin_context(store):
    """`-`: the context is a tar (plain, gzip or zstd) on stdin, extracted safely to a scratch dir."""
    from cache.compression import decompress_reader
    from cache.extract import extract_tar

    with store.work_dir("context") as d:
        extract_tar(decompress_reader(sys.stdin.buffer, None), d, whiteouts="keep")
        yield d
