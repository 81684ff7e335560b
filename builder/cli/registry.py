"""pull, push, login, logout: images to and from OCI registries (cache/registry)."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from ._store import open_store


def tls_flag(value: Optional[str]) -> Optional[bool]:
    """`--tls-verify=false` as podman spells it; None leaves the default (verify, except loopback)."""
    if value is None:
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    from grammar.errors import UsageError

    raise UsageError(f"--tls-verify={value!r}: expected true or false")


def _progress(quiet: bool):
    if quiet:
        return None
    from builder.progress import transfer_printer

    return transfer_printer(sys.stderr)


def register(app: typer.Typer) -> None:
    @app.command("pull")
    def pull_cmd(ctx: typer.Context, ref: str = typer.Argument(..., help="The image, e.g. 127.0.0.1:5000/debian:bookworm."),
                 platform: Optional[str] = typer.Option(None, "--platform", help="os/arch or os/arch/variant from a multi-platform image."),
                 tls_verify: Optional[str] = typer.Option(None, "--tls-verify", help="false: accept plain http / unverified TLS."),
                 quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only the digest.")) -> None:
        """Pull an image from a registry into the store."""
        from cache.registry import pull

        image = pull(open_store(ctx), ref, platform, _progress(quiet), tls_verify=tls_flag(tls_verify))
        print(image.digest)

    @app.command("push")
    def push_cmd(ctx: typer.Context, image: str = typer.Argument(..., help="The image in the store."),
                 dest: Optional[str] = typer.Argument(None, help="Where to push (default: the image's own name)."),
                 tls_verify: Optional[str] = typer.Option(None, "--tls-verify", help="false: accept plain http / unverified TLS."),
                 quiet: bool = typer.Option(False, "-q", "--quiet", help="Print only the digest.")) -> None:
        """Push an image from the store to a registry; prints the manifest digest."""
        from cache.registry import push

        digest = push(open_store(ctx), image, dest or image, _progress(quiet), tls_verify=tls_flag(tls_verify))
        print(digest)

    @app.command("login")
    def login_cmd(registry: str = typer.Argument(..., help="The registry host, e.g. 127.0.0.1:5000 or docker.io."),
                  username: Optional[str] = typer.Option(None, "-u", "--username"),
                  password: Optional[str] = typer.Option(None, "-p", "--password", help="Prefer --password-stdin."),
                  password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
                  tls_verify: Optional[str] = typer.Option(None, "--tls-verify")) -> None:
        """Check credentials against a registry and save them in Docker's config.json."""
        from cache.registry import login
        from grammar.errors import UsageError

        if password_stdin:
            if password:
                raise UsageError("--password and --password-stdin: give one of them")
            password = sys.stdin.readline().rstrip("\n")
        if not username:
            username = typer.prompt("Username")
        if password is None:
            password = typer.prompt("Password", hide_input=True)
        where = login(registry, username, password, tls_verify=tls_flag(tls_verify))
        print(f"Login Succeeded (saved in {where})")

    @app.command("logout")
    def logout_cmd(registry: str = typer.Argument(..., help="The registry host.")) -> None:
        """Forget the credentials saved for a registry."""
        from cache.registry import logout
        from grammar.errors import PybuildError

        if not logout(registry):
            raise PybuildError(f"not logged in to {registry}")
        print(f"Removing login credentials for {registry}")
