"""One module per instruction (kaniko style). Each exports `apply(build, state, ins) -> BuildState`,
where `build` offers the narrow interface of builder/step.py; `dispatch` picks the module."""
from __future__ import annotations

from importlib import import_module
from typing import Callable

_MODULES = {
    "env": "env", "arg": "arg", "label": "label", "cmd": "command", "entrypoint": "command",
    "user": "user", "workdir": "workdir", "expose": "expose", "volume": "volume",
    "stopsignal": "stopsignal", "shell": "shell", "maintainer": "maintainer", "healthcheck": "healthcheck",
    "onbuild": "onbuild", "copy": "copy", "add": "copy", "run": "run",
}


def dispatch(keyword: str) -> Callable | None:
    module = _MODULES.get(keyword)
    return None if module is None else import_module(f"{__name__}.{module}").apply
