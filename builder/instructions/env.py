"""ENV: values expanded against the state before this line (as BuildKit: in `ENV A=2 B=$A`, B gets
the A of before); later ENV lines see earlier ones."""
from __future__ import annotations


def apply(build, state, ins):
    env = state.env
    scope = state.expansion_env()
    used = {}
    for name, raw in ins.pairs:
        value = build.expander.expand(raw, scope)
        used.update({n: scope.get(n, "") for n in build.expander.used(raw) if n in scope})
        env[name] = value
    return build.config(state, ins, {"Env": [f"{k}={v}" for k, v in env.items()]}, args=used)
