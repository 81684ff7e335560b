"""The command line: a thin typer face over the core.

Every `builder/cli/<name>.py` module (except those starting with `_`) defines `register(app)` and is
picked up here, so a command group lives in its own file. Command bodies import the core lazily:
start-up cost is paid only by the command that needs it. Registration is lazy too: typer turns every
registered command's signature into click parameters on each call (~40 ms for all of them), so a
run registers only the module of the command it runs, found in COMMAND_MODULES; `--help`, a bare
`pybuild` and a word not in the table register them all.

`build` is the default command: `pybuild -t NAME .` is `pybuild build -t NAME .`.
"""
from __future__ import annotations

import os
import sys
from importlib import import_module

import typer

from grammar.errors import PybuildError

from ._options import GLOBAL_FLAGS, GLOBAL_OPTIONS_WITH_VALUE, Options

__version__ = "0.1.0"

_app = typer.Typer(
    name="pybuild",
    help="Build container images from Dockerfiles and run them: no daemon, just the kernel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Command (or command group) -> the module that registers it. tests/test_cli.py keeps this in step
# with the modules; a command missing here still works (the full scan finds it), only slower.
COMMAND_MODULES = {
    "build": "build", "check": "check", "parse": "parse", "debootstrap": "debootstrap",
    "images": "images", "tag": "images", "rmi": "images", "history": "images", "inspect": "images",
    "image": "images", "save": "archive", "load": "archive", "import": "archive", "unpack": "archive",
    "system": "system", "run": "run", "pull": "registry", "push": "registry", "login": "registry",
    "logout": "registry",
    **{c: "containers" for c in ("ps", "stop", "kill", "start", "restart", "rm", "pause", "unpause",
                                 "wait", "logs", "top", "stats", "export", "cp", "exec", "container")},
}
_registered: set[str] = set()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pybuild {__version__}")
        raise typer.Exit()


@_app.callback()
def _global(
    ctx: typer.Context,
    root: str = typer.Option(None, "--root", help="Store location (default: $PYBUILD_ROOT, else /var/lib/pybuild as root).", metavar="DIR"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = Options(root=root, debug=debug)


def _register(modules) -> None:
    for name in sorted(set(modules) - _registered):
        _registered.add(name)
        import_module(f"{__name__}.{name}").register(_app)


def all_modules() -> list[str]:
    import pkgutil

    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str):
    if name == "app":  # the whole CLI, as tests and `--help` see it
        _register(all_modules())
        return _app
    raise AttributeError(name)


def _command_names() -> set[str]:
    app = _app
    names = {c.name for c in app.registered_commands if c.name}
    names |= {c.callback.__name__.replace("_", "-") for c in app.registered_commands if not c.name and c.callback}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def _first_word(argv: list[str]) -> int:
    """The index of the first word after the global options."""
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
    return i


def route_default_command(argv: list[str], commands: set[str]) -> list[str]:
    """Insert `build` where the first word after the global options is not a subcommand."""
    i = _first_word(argv)
    if i >= len(argv) or argv[i] in commands or argv[i] in ("-h", "--help", "--version"):
        return argv
    return argv[:i] + ["build"] + argv[i:]


def _prepare(argv: list[str]) -> list[str]:
    """Register what this call needs and route the default command."""
    i = _first_word(argv)
    word = argv[i] if i < len(argv) else None
    if word in COMMAND_MODULES:
        _register([COMMAND_MODULES[word]])
        return argv
    if word == "--version":
        _register(["build"])  # a group needs one command; the eager callback exits first
        return argv
    if word is not None and word not in ("-h", "--help") and (word.startswith("-") or os.path.exists(word)):
        _register(["build"])  # `pybuild -t x .`, `pybuild .`, `pybuild -`: the default command
        return argv[:i] + ["build"] + argv[i:]
    _register(all_modules())
    return route_default_command(argv, _command_names())


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = _prepare(argv)
    debug = "--debug" in argv or bool(os.environ.get("PYBUILD_DEBUG"))
    try:
        _app(args=argv, prog_name="pybuild")
    except PybuildError as err:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"pybuild: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("pybuild: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as err:
        import errno

        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        if debug:
            import traceback

            traceback.print_exc()
        print(f"pybuild: error: {_no_space(err, argv)}", file=sys.stderr)
        sys.exit(1)


def _no_space(err: OSError, argv: list[str]) -> str:
    """A full disk (or quota) is the user's to fix: one line naming the store (or the file outside it)."""
    import errno

    root, i = None, 0
    while i < _first_word(argv):
        if argv[i] == "--root" and i + 1 < len(argv):
            root = argv[i + 1]
        elif argv[i].startswith("--root="):
            root = argv[i].partition("=")[2]
        i += 1
    store = Options(root=root).store_root()
    what = "disk quota exceeded" if err.errno == errno.EDQUOT else "no space left on device"
    name = os.path.abspath(err.filename) if isinstance(err.filename, str) else None
    if name and os.path.commonpath([name, store]) != store:
        return f"{what} writing {name} (free space there, then run the command again)"
    return (f"{what} in the store {store} (free space on its filesystem, e.g. `pybuild system prune`, "
            f"or use another --root; then run the command again: what was half-written is swept)")
