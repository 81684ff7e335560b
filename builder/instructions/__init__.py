"""One module per instruction (kaniko style). Each exports `apply(build, state, ins) -> BuildState`:
the narrow interface is that one function; `dispatch` picks it by keyword."""
from __future__ import annotations

from importlib import import_module
from typing import Callable

_MODULES = {
    "env": "env", "arg": "arg", "label": "label", "cmd": "command", "entrypoint": "command",
    "user": "config", "workdir": "workdir", "expose": "config", "volume": "config",
    "stopsignal": "config", "shell": "config", "maintainer": "config", "healthcheck": "config",
    "onbuild": "config", "copy": "copy", "add": "copy", "run": "run",
}


def dispatch(keyword: str) -> Callable | None:
    module = _MODULES.get(keyword)
    return None if module is None else import_module(f"{__name__}.{module}").apply
