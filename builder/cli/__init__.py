"""The command line: a thin typer face over the core.

Every `builder/cli/<name>.py` module (except those starting with `_`) defines `register(app)` and is
picked up here, so a command group lives in its own file. Command bodies import the core lazily:
start-up cost is paid only by the command that needs it.

`build` is the default command: `pybuild -t NAME .` is `pybuild build -t NAME .`.
"""
from __future__ import annotations

import os
import pkgutil
import sys
from importlib import import_module

import typer

from grammar.errors import PybuildError

from ._options import GLOBAL_FLAGS, GLOBAL_OPTIONS_WITH_VALUE, Options

__version__ = "0.1.0"

app = typer.Typer(
    name="pybuild",
    help="Build container images from Dockerfiles and run them: no daemon, just the kernel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pybuild {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    root: str = typer.Option(None, "--root", help="Store location (default: $PYBUILD_ROOT, else /var/lib/pybuild as root).", metavar="DIR"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = Options(root=root, debug=debug)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            import_module(f"{__name__}.{info.name}").register(app)


_register_commands()


def _command_names() -> set[str]:
    names = {c.name for c in app.registered_commands if c.name}
    names |= {c.callback.__name__.replace("_", "-") for c in app.registered_commands if not c.name and c.callback}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def route_default_command(argv: list[str], commands: set[str]) -> list[str]:
    """Insert `build` where the first word after the global options is not a subcommand."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in GLOBAL_FLAGS:
            i += 1
        elif word in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
        elif any(word.startswith(o + "=") for o in GLOBAL_OPTIONS_WITH_VALUE):
            i += 1
        else:
            break
    if i >= len(argv) or argv[i] in commands or argv[i] in ("-h", "--help", "--version"):
        return argv
    return argv[:i] + ["build"] + argv[i:]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = route_default_command(argv, _command_names())
    debug = "--debug" in argv or bool(os.environ.get("PYBUILD_DEBUG"))
    try:
        app(args=argv, prog_name="pybuild")
    except PybuildError as err:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"pybuild: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("pybuild: interrupted", file=sys.stderr)
        sys.exit(130)
