"""LABEL: key=value pairs merged into the config's Labels (both sides expanded)."""
from __future__ import annotations


def apply(build, state, ins):
    labels = dict(state.image.config_section.get("Labels") or {})
    for key, raw in ins.pairs:
        labels[build.expand(state, key)] = build.expand(state, raw)
    return build.config(state, ins, {"Labels": labels})
