"""WORKDIR: relative to the previous one, expanded; as BuildKit, the directory is made (like
`mkdir -p`, new parts owned by the current USER) in a layer of its own, an empty one when it exists;
`WORKDIR /` makes no layer (BuildKit's dispatchWorkdir skips the mkdir of /)."""
from __future__ import annotations

import posixpath
from dataclasses import replace

from .. import copyfiles, owners
from ..cachekey import KeyParts
from .copy import _maker


def apply(build, state, ins):
    value = build.expand(state, ins.value)
    current = state.image.config_section.get("WorkingDir") or "/"
    path = posixpath.normpath(posixpath.join(current, value))
    if path == "/":
        return build.config(state, ins, {"WorkingDir": path})
    user = state.image.config_section.get("User") or ""
    owner = owners.resolve(build.store, state.image, user) if user else None
    state = replace(state, image=state.image.with_config(WorkingDir=path))
    parts = KeyParts(state.key, f"WORKDIR {path}", (), (), "" if owner is None else f"{owner[0]}:{owner[1]}")

    def change(root, _views):
        copyfiles.ensure_dir(root, path, owner)

    return build.layer(state, ins, parts, _maker(build, state, ins, change), f"WORKDIR {path}")
