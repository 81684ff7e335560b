"""CMD and ENTRYPOINT: shell form runs through the SHELL. ENTRYPOINT resets the CMD the stage
inherited from its base, but not one this stage set (as BuildKit's `cmdSet`)."""
from __future__ import annotations

from dataclasses import replace


def as_argv(state, ins) -> list[str]:
    return list(ins.command) if ins.is_json else [*state.shell, ins.command]


def apply(build, state, ins):
    argv = as_argv(state, ins)
    if ins.keyword == "cmd":
        return replace(build.config(state, ins, {"Cmd": argv}), cmd_set=True)
    if state.cmd_set:
        return build.config(state, ins, {"Entrypoint": argv})
    return build.config(state, ins, {"Entrypoint": argv, "Cmd": None})
