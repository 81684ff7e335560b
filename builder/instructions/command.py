"""CMD and ENTRYPOINT: shell form runs through the SHELL; ENTRYPOINT resets an inherited CMD."""
from __future__ import annotations


def as_argv(state, ins) -> list[str]:
    return list(ins.command) if ins.is_json else [*state.shell, ins.command]


def apply(build, state, ins):
    argv = as_argv(state, ins)
    if ins.keyword == "cmd":
        return build.config_step(state, ins, {"Cmd": argv})
    return build.config_step(state, ins, {"Entrypoint": argv, "Cmd": None})
