"""Which repository of a registry is known to hold a blob: what makes a cross-repository mount
possible on push (the registry links the blob instead of receiving it again).

ROOT/registry/<registry>.json maps digest -> repository, written after each pull and push.
It is only a hint: a wrong entry costs one refused mount, then a normal upload.
"""
from __future__ import annotations

import json
import os

from ..fsutil import atomic_write

MAX_ENTRIES = 100_000


def _path(store, registry: str) -> str:
    safe = registry.replace("/", "_").replace(":", "_")
    return os.path.join(store.root, "registry", f"{safe}.json")


def known(store, registry: str) -> dict[str, str]:
    try:
        with open(_path(store, registry), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def remember(store, registry: str, repository: str, digests: list[str]) -> None:
    path = _path(store, registry)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with store.lock(f"registry-{os.path.basename(path)}"):
        data = known(store, registry)
        for d in digests:
            data.pop(d, None)
            data[d] = repository  # newest last: the oldest go first when the map is full
        while len(data) > MAX_ENTRIES:
            data.pop(next(iter(data)))
        atomic_write(path, json.dumps(data).encode(), store.tmp)
