"""WORKDIR: relative to the previous one, expanded; as BuildKit, the directory is made (like
`mkdir -p`, new parts owned by the current USER) in a layer of its own, an empty one when it exists;
`WORKDIR /` makes no layer (BuildKit's dispatchWorkdir skips the mkdir of /)."""
from __future__ import annotations

import posixpath
from dataclasses import replace

from .. import copyfiles
from ..cachekey import KeyParts
from ..copyfiles import Request
from .copy import _maker


def apply(build, state, ins):
    value = build.expand(state, ins.value)
    current = state.image.config_section.get("WorkingDir") or "/"
    path = posixpath.normpath(posixpath.join(current, value))
    if path == "/":
        return build.config(state, ins, {"WorkingDir": path})
    user = state.image.config_section.get("User") or ""
    state = replace(state, image=state.image.with_config(WorkingDir=path))
    # USER as written keys the step: the parent key fixes the ids it names, read on a miss only
    parts = KeyParts(state.key, f"WORKDIR {path}", (), (), user)

    req = Request([], path, chown=user)   # _maker resolves req.owner from the USER, on a miss

    def change(root, _views):
        copyfiles.ensure_dir(root, path, req.owner)

    return build.layer(state, ins, parts, _maker(build, state, ins, change, req=req), f"WORKDIR {path}")
