"""USER: the user (name or uid, optionally :group) later RUN steps, WORKDIR and the container run as."""
from __future__ import annotations


def apply(build, state, ins):
    return build.config(state, ins, {"User": build.expand(state, ins.value)})
