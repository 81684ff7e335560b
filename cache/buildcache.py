"""The build-cache index: xxh3-128 key -> what that step produced (a layer, or a config change).

One small JSON file per key under cache/, written atomically; gc keeps every blob an entry names.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from .digest import canonical_json
from .fsutil import atomic_write
from .image import Descriptor

_KEY = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class CacheEntry:
    """A layer step: layer + diff_id (+ history). A config-only step: config changes (+ history)."""
    layer: Descriptor | None = None
    diff_id: str | None = None
    config: Mapping[str, Any] | None = field(default=None, compare=False)
    history: Mapping[str, Any] | None = field(default=None, compare=False)
    created: str | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        if self.layer is not None:
            out["layer"] = self.layer.to_json()
            out["diff_id"] = self.diff_id
        if self.config is not None:
            out["config"] = dict(self.config)
        if self.history is not None:
            out["history"] = dict(self.history)
        if self.created:
            out["created"] = self.created
        return out

    @classmethod
    def from_json(cls, d: Mapping) -> "CacheEntry":
        layer = Descriptor.from_json(d["layer"]) if d.get("layer") else None
        return cls(layer, d.get("diff_id"), d.get("config"), d.get("history"), d.get("created"))


class BuildCache:
    def __init__(self, directory: str, tmpdir: str, record_layer=None):
        self.dir = directory
        self.tmpdir = tmpdir
        self._record_layer = record_layer

    def _path(self, key: str) -> str:
        if not _KEY.match(key):
            raise ValueError(f"build-cache keys are xxh3-128 hex (32 digits), not {key!r}")
        return os.path.join(self.dir, key)

    def get(self, key: str) -> CacheEntry | None:
        path = self._path(key)  # a malformed key is the caller's bug: ValueError
        try:
            with open(path, "rb") as f:
                return CacheEntry.from_json(json.load(f))
        except (FileNotFoundError, ValueError, KeyError):
            return None  # a missing or unreadable entry is a miss, never an error

    def put(self, key: str, entry: CacheEntry) -> None:
        if entry.layer is not None and self._record_layer is not None:
            self._record_layer(entry.diff_id, entry.layer)
        atomic_write(self._path(key), canonical_json(entry.to_json()), self.tmpdir)

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def items(self) -> Iterator[tuple[str, CacheEntry]]:
        for name in sorted(os.listdir(self.dir)):
            if _KEY.match(name) and (entry := self.get(name)) is not None:
                yield name, entry

    def clear(self) -> int:
        n = 0
        for name in os.listdir(self.dir):
            if _KEY.match(name):
                os.unlink(os.path.join(self.dir, name))
                n += 1
        return n
