"""Global options shared by every command (set by the root callback, read through ctx.obj)."""
from __future__ import annotations

import os
from dataclasses import dataclass

GLOBAL_FLAGS = ("--debug",)
GLOBAL_OPTIONS_WITH_VALUE = ("--root",)


@dataclass(frozen=True)
class Options:
    root: str | None = None
    debug: bool = False

    def store_root(self) -> str:
        """--root, else $PYBUILD_ROOT, else /var/lib/pybuild as root, else $XDG_DATA_HOME/pybuild."""
        if self.root:
            return os.path.abspath(self.root)
        if os.environ.get("PYBUILD_ROOT"):
            return os.path.abspath(os.environ["PYBUILD_ROOT"])
        if os.geteuid() == 0:
            return "/var/lib/pybuild"
        data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        return os.path.join(data, "pybuild")
