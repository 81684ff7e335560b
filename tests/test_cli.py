"""The CLI's shape: default command routing, --version, --help, errors and exit codes."""
from __future__ import annotations

import subprocess
import sys

import pytest

from builder.cli import route_default_command

COMMANDS = {"build", "parse", "run", "images"}


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-t", "x", "."], ["build", "-t", "x", "."]),
        (["."], ["build", "."]),
        (["--root", "/s", "-t", "x", "."], ["--root", "/s", "build", "-t", "x", "."]),
        (["--root=/s", "--debug", "."], ["--root=/s", "--debug", "build", "."]),
        (["run", "img"], ["run", "img"]),
        (["--debug", "images"], ["--debug", "images"]),
        (["--help"], ["--help"]),
        (["--version"], ["--version"]),
        ([], []),
    ],
)
def test_build_is_the_default_command(argv, expected):
    assert route_default_command(argv, COMMANDS) == expected


def _pybuild(*args):
    return subprocess.run([sys.executable, "-m", "builder.cli", *args], capture_output=True, text=True)


def test_version():
    out = _pybuild("--version")
    assert out.returncode == 0 and out.stdout.startswith("pybuild ")


def test_unknown_option_is_a_usage_error():
    out = _pybuild("--no-such-flag")
    assert out.returncode == 2


def test_command_table_names_every_command_of_every_module():
    """COMMAND_MODULES lets a call register only its own module (start-up); it must stay complete."""
    import importlib

    import typer

    from builder import cli

    registered = {}
    for module in cli.all_modules():
        app = typer.Typer()
        importlib.import_module(f"builder.cli.{module}").register(app)
        for c in app.registered_commands:
            registered[c.name or c.callback.__name__.replace("_", "-")] = module
        for g in app.registered_groups:
            registered[g.name] = module
    assert registered == cli.COMMAND_MODULES


@pytest.mark.parametrize("argv", [["--help"], ["images", "--help"], ["-t", "x", "--help"], []])
def test_help_lists_or_routes(argv):
    out = _pybuild(*argv)
    assert out.returncode in (0, 2)
    text = out.stdout + out.stderr
    assert ("Usage: pybuild" in text) and (("build" in text and "images" in text) if argv in (["--help"], []) else True)


def test_every_command_has_working_help():
    """Help text is rendered through rich markup: a `[x]` in it breaks --help at run time."""
    from typer.testing import CliRunner

    from builder import cli

    runner = CliRunner()
    for name in sorted(cli.COMMAND_MODULES):
        result = runner.invoke(cli.app, [name, "--help"])
        assert result.exit_code == 0, f"pybuild {name} --help: {result.output or result.exception!r}"
        assert "Usage:" in result.output
