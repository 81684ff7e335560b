"""EXPOSE: ports recorded in the config (tcp unless a protocol is given); each once."""
from __future__ import annotations


def apply(build, state, ins):
    ports = dict(state.image.config_section.get("ExposedPorts") or {})
    for raw in ins.values:
        port = build.expand(state, raw)
        ports[port if "/" in port else f"{port}/tcp"] = {}
    return build.config(state, ins, {"ExposedPorts": ports})
