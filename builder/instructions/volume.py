"""VOLUME: mount points recorded in the config (what a later RUN writes there stays, as BuildKit)."""
from __future__ import annotations


def apply(build, state, ins):
    vols = dict(state.image.config_section.get("Volumes") or {})
    vols.update({build.expand(state, v): {} for v in ins.values})
    return build.config(state, ins, {"Volumes": vols})
