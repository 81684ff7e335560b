"""LABEL: key=value pairs merged into the config's Labels (both sides expanded)."""
from __future__ import annotations


def apply(build, state, ins):
    scope = state.expansion_env()
    labels = dict(state.image.config_section.get("Labels") or {})
    for key, raw in ins.pairs:
        labels[build.expander.expand(key, scope)] = build.expander.expand(raw, scope)
    return build.config_step(state, ins, {"Labels": labels})
