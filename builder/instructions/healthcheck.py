"""HEALTHCHECK: the check (CMD or CMD-SHELL) and its durations in nanoseconds; NONE disables one."""
from __future__ import annotations

import re

_NS = {"s": 1_000_000_000, "ms": 1_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def _duration(text: str | None) -> int | None:
    if not text:
        return None
    return sum(int(float(number) * _NS[unit]) for number, unit in re.findall(r"([\d.]+)(ms|s|m|h)", text))


def apply(build, state, ins):
    if ins.kind == "NONE":
        return build.config(state, ins, {"Healthcheck": {"Test": ["NONE"]}})
    test = ["CMD", *ins.command] if ins.is_json else ["CMD-SHELL", ins.command]
    check = {"Test": test}
    for field, value in (("Interval", ins.interval), ("Timeout", ins.timeout), ("StartPeriod", ins.start_period),
                         ("StartInterval", getattr(ins, "start_interval", None))):
        if _duration(value):
            check[field] = _duration(value)
    if ins.retries:
        check["Retries"] = ins.retries
    return build.config(state, ins, {"Healthcheck": check})
