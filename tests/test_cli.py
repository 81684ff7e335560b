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
