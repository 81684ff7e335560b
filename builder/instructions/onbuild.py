"""ONBUILD: a trigger recorded in the config, run by the stage built FROM this image."""
from __future__ import annotations


def apply(build, state, ins):
    triggers = list(state.image.config_section.get("OnBuild") or [])
    # BuildKit records ONBUILD in the config only, not in the history
    return build.config(state, ins, {"OnBuild": triggers + [ins.inner.original.strip()]}, history=False)
