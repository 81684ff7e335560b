"""VOLUME: mount points recorded in the config (what a later RUN writes there stays, as BuildKit)."""
from __future__ import annotations


def apply(build, state, ins):
    scope = state.expansion_env()
    vols = dict(state.image.config_section.get("Volumes") or {})
    vols.update({build.expander.expand(v, scope): {} for v in ins.values})
    return build.config_step(state, ins, {"Volumes": vols})
