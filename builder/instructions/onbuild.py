"""ONBUILD: a trigger recorded in the config, run by the stage built FROM this image."""
from __future__ import annotations

from dataclasses import replace


def apply(build, state, ins):
    triggers = list(state.image.config_section.get("OnBuild") or [])
    new = build.config_step(state, ins, {})   # the key advances; BuildKit writes no history
    return replace(new, image=state.image.with_config(OnBuild=triggers + [ins.inner.original.strip()]))
