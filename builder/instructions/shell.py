"""SHELL: the shell later shell-form RUN, CMD and ENTRYPOINT run through (recorded in the config)."""
from __future__ import annotations

from dataclasses import replace


def apply(build, state, ins):
    return replace(build.config(state, ins, {"Shell": list(ins.command)}), shell=tuple(ins.command))
