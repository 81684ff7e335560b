"""ENV: values expanded against the state of this moment; later ENVs see earlier ones."""
from __future__ import annotations


def apply(build, state, ins):
    env = state.env
    scope = state.expansion_env()
    used = {}
    for name, raw in ins.pairs:
        value = build.expander.expand(raw, {**scope, **env})
        used.update({n: scope.get(n, "") for n in build.expander.used(raw) if n in scope})
        env[name] = value
    return build.config_step(state, ins, {"Env": [f"{k}={v}" for k, v in env.items()]}, args=used)
