"""STOPSIGNAL: the signal `stop` sends first (expanded, kept as written: SIGTERM, 15...)."""
from __future__ import annotations


def apply(build, state, ins):
    return build.config(state, ins, {"StopSignal": build.expand(state, ins.value)})
