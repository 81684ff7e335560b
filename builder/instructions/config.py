"""The small config-only instructions: USER, EXPOSE, VOLUME, STOPSIGNAL, SHELL, MAINTAINER,
HEALTHCHECK, ONBUILD. Each maps to one field of the image config."""
from __future__ import annotations

from dataclasses import replace

_NS = {"s": 1_000_000_000, "ms": 1_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def _duration(text: str | None) -> int | None:
    if not text:
        return None
    import re

    total = 0
    for number, unit in re.findall(r"([\d.]+)(ms|s|m|h)", text):
        total += int(float(number) * _NS[unit])
    return total


def apply(build, state, ins):
    scope = state.expansion_env()
    kw = ins.keyword
    if kw == "user":
        return build.config_step(state, ins, {"User": build.expander.expand(ins.value, scope)})
    if kw == "stopsignal":
        return build.config_step(state, ins, {"StopSignal": build.expander.expand(ins.value, scope)})
    if kw == "expose":
        ports = dict(state.image.config_section.get("ExposedPorts") or {})
        for raw in ins.values:
            port = build.expander.expand(raw, scope)
            ports[port if "/" in port else f"{port}/tcp"] = {}
        return build.config_step(state, ins, {"ExposedPorts": ports})
    if kw == "volume":
        vols = dict(state.image.config_section.get("Volumes") or {})
        vols.update({build.expander.expand(v, scope): {} for v in ins.values})
        return build.config_step(state, ins, {"Volumes": vols})
    if kw == "shell":
        return replace(build.config_step(state, ins, {"Shell": list(ins.command)}), shell=tuple(ins.command))
    if kw == "maintainer":
        new = build.config_step(state, ins, {})
        return replace(new, image=new.image.with_fields(author=ins.value))
    if kw == "onbuild":
        triggers = list(state.image.config_section.get("OnBuild") or [])
        inner = ins.inner.original.strip()
        new = build.config_step(state, ins, {})   # the key advances; BuildKit writes no history
        return replace(new, image=state.image.with_config(OnBuild=triggers + [inner]))
    # HEALTHCHECK
    if ins.kind == "NONE":
        return build.config_step(state, ins, {"Healthcheck": {"Test": ["NONE"]}})
    test = ["CMD", *ins.command] if ins.is_json else ["CMD-SHELL", ins.command]
    check = {"Test": test}
    for field, value in (("Interval", ins.interval), ("Timeout", ins.timeout), ("StartPeriod", ins.start_period),
                         ("StartInterval", getattr(ins, "start_interval", None))):
        if _duration(value):
            check[field] = _duration(value)
    if ins.retries:
        check["Retries"] = ins.retries
    return build.config_step(state, ins, {"Healthcheck": check})
