"""WORKDIR: relative to the previous one; expanded; the directory is made by the next filesystem
step that needs it (Docker creates it; here COPY and RUN create it inside the rootfs)."""
from __future__ import annotations

import posixpath


def apply(build, state, ins):
    value = build.expander.expand(ins.value, state.expansion_env())
    current = state.image.config_section.get("WorkingDir") or "/"
    path = posixpath.normpath(posixpath.join(current, value))
    return build.config_step(state, ins, {"WorkingDir": path})
