"""STOPSIGNAL: the signal `stop` sends first (expanded, kept as written: SIGTERM, 15...)."""
from __future__ import annotations


def apply(build, state, ins):
    return build.config_step(state, ins, {"StopSignal": build.expander.expand(ins.value, state.expansion_env())})
