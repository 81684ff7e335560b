"""ARG: a name enters the scope with --build-arg's value, else the global value (for a name
declared before FROM), else its default. Only values a later step reads enter its cache key."""
from __future__ import annotations

from dataclasses import replace


def apply(build, state, ins):
    args = dict(state.args)
    scope = state.expansion_env()
    globals_ = build.global_scope()
    for name, default in ins.pairs:
        if name in build.build_args:
            value = build.build_args[name]
        elif default is not None:
            value = build.expander.expand(default, scope)
        elif name in globals_:
            value = globals_[name]
        else:
            continue
        args[name] = value
        scope[name] = value
    new = build.config(state, ins, {}, args={k: args[k] for k, _ in ins.pairs if k in args})
    # ARG leaves no trace in the image config, but BuildKit records it in the history (empty layer).
    return replace(new, args=tuple(args.items()))
