"""Images and descriptors as read-only values: a change returns a new value (go-containerregistry)."""
from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from . import mediatypes as mt
from .digest import canonical_json, sha256_digest

# The config section's fields, as Docker writes them (Healthcheck, OnBuild, Shell included).
CONFIG_FIELDS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
                 "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = field(default=None, compare=False)
    platform: Mapping[str, str] | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @classmethod
    def from_json(cls, d: Mapping) -> "Descriptor":
        return cls(d.get("mediaType", ""), d["digest"], int(d["size"]), d.get("annotations"), d.get("platform"))

    @classmethod
    def of_bytes(cls, data: bytes, media_type: str) -> "Descriptor":
        return cls(media_type, sha256_digest(data), len(data))


def host_architecture() -> str:
    machine = os.uname().machine  # what platform.machine() returns, without importing platform
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


@dataclass(frozen=True)
class ImageConfig:
    """A typed view of the config section, for readers that prefer attributes."""
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    user: str = ""
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)
    stop_signal: str = ""
    shell: tuple[str, ...] | None = None
    healthcheck: Mapping[str, Any] | None = field(default=None, compare=False)
    on_build: tuple[str, ...] = ()

    @classmethod
    def from_section(cls, c: Mapping) -> "ImageConfig":
        tup = lambda v: tuple(v) if v is not None else None  # noqa: E731
        return cls(tuple(c.get("Env") or ()), tup(c.get("Cmd")), tup(c.get("Entrypoint")), c.get("User") or "",
                   c.get("WorkingDir") or "", tuple(sorted(c.get("ExposedPorts") or {})),
                   tuple(sorted(c.get("Volumes") or {})), dict(c.get("Labels") or {}), c.get("StopSignal") or "",
                   tup(c.get("Shell")), c.get("Healthcheck"), tuple(c.get("OnBuild") or ()))


class Image:
    """manifest + config. The manifest's config descriptor always matches the config's canonical
    bytes, so `id` is known before the image is stored. Never mutate the dicts you get."""

    __slots__ = ("_manifest", "_config", "manifest_descriptor", "_config_bytes")

    def __init__(self, manifest: dict, config: dict, manifest_descriptor: Descriptor | None = None,
                 config_bytes: bytes | None = None):
        self._manifest = manifest
        self._config = config
        self.manifest_descriptor = manifest_descriptor
        self._config_bytes = config_bytes

    # --- reading ---
    @property
    def manifest(self) -> dict:
        return self._manifest

    @property
    def config(self) -> dict:
        return self._config

    @property
    def config_bytes(self) -> bytes:
        """The config exactly as stored (pulled images keep their registry bytes)."""
        return self._config_bytes if self._config_bytes is not None else canonical_json(self._config)

    @property
    def config_descriptor(self) -> Descriptor:
        return Descriptor.from_json(self._manifest["config"])

    @property
    def id(self) -> str:
        return self._manifest["config"]["digest"]

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def digest(self) -> str | None:
        return self.manifest_descriptor.digest if self.manifest_descriptor else None

    @property
    def layers(self) -> list[Descriptor]:
        return [Descriptor.from_json(d) for d in self._manifest.get("layers", [])]

    @property
    def diff_ids(self) -> list[str]:
        return list(self._config.get("rootfs", {}).get("diff_ids", []))

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def config_section(self) -> dict:
        return self._config.get("config") or {}

    @property
    def typed_config(self) -> ImageConfig:
        return ImageConfig.from_section(self.config_section)

    @property
    def history(self) -> list[dict]:
        return list(self._config.get("history", []))

    @property
    def created(self) -> str | None:
        return self._config.get("created")

    @property
    def os(self) -> str:
        return self._config.get("os", "linux")

    @property
    def architecture(self) -> str:
        return self._config.get("architecture", "")

    @property
    def size(self) -> int:
        """Bytes of the stored layer blobs (compressed), as registries count."""
        return sum(d.size for d in self.layers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Image) and other.id == self.id and other._manifest == self._manifest

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Image({self.short_id}, {len(self.layers)} layers)"

    # --- making new values ---
    @classmethod
    def empty(cls, os: str = "linux", architecture: str | None = None) -> "Image":
        """FROM scratch: no layers, an empty config section."""
        config = {"architecture": architecture or host_architecture(), "os": os, "config": {},
                  "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
        return cls._build({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": []}, config)

    @classmethod
    def _build(cls, manifest: dict, config: dict) -> "Image":
        data = canonical_json(config)
        manifest = dict(manifest)
        manifest["config"] = Descriptor.of_bytes(data, mt.OCI_CONFIG).to_json()
        return cls(manifest, config, None, data)

    def _with(self, mutate) -> "Image":
        manifest, config = copy.deepcopy(self._manifest), copy.deepcopy(self._config)
        mutate(manifest, config)
        # Written back as OCI, whatever it was read as.
        manifest["mediaType"] = mt.OCI_MANIFEST
        manifest["schemaVersion"] = 2
        manifest["layers"] = [dict(d, mediaType=_oci_layer_type(d.get("mediaType", ""))) for d in manifest.get("layers", [])]
        return Image._build(manifest, config)

    def with_config(self, *, history: Mapping | None = None, **changes: Any) -> "Image":
        """Change config-section fields (None removes one); `history` appends an empty_layer entry."""
        def mutate(manifest: dict, config: dict) -> None:
            section = config.setdefault("config", {})
            for key, value in changes.items():
                if value is None:
                    section.pop(key, None)
                else:
                    section[key] = copy.deepcopy(value)
            if history is not None:
                config.setdefault("history", []).append(dict({"empty_layer": True}, **history))
        return self._with(mutate)

    def with_fields(self, **fields: Any) -> "Image":
        """Change top-level config fields (created, author, os, architecture, variant)."""
        def mutate(manifest: dict, config: dict) -> None:
            for key, value in fields.items():
                if value is None:
                    config.pop(key, None)
                else:
                    config[key] = copy.deepcopy(value)
        return self._with(mutate)

    def with_layer(self, layer: Any, history: Mapping | None = None) -> "Image":
        """Append a layer (a cache.layers.Layer, or anything with .descriptor and .diff_id)."""
        def mutate(manifest: dict, config: dict) -> None:
            manifest.setdefault("layers", []).append(layer.descriptor.to_json())
            config.setdefault("rootfs", {"type": "layers", "diff_ids": []}).setdefault("diff_ids", []).append(layer.diff_id)
            entry = dict(history or {})
            entry.pop("empty_layer", None)
            config.setdefault("history", []).append(entry)
        return self._with(mutate)

    def with_annotations(self, annotations: Mapping[str, str]) -> "Image":
        def mutate(manifest: dict, config: dict) -> None:
            manifest.setdefault("annotations", {}).update(annotations)
        return self._with(mutate)


class BadDocument(ValueError):
    """A manifest, index or config from outside (an archive, a registry) whose shape is wrong."""


_STR_LISTS = ("Env", "Cmd", "Entrypoint", "Shell", "OnBuild")
_STRS = ("User", "WorkingDir", "StopSignal")
_MAPS = ("ExposedPorts", "Volumes", "Labels", "Healthcheck")


def checked_descriptor(d: object) -> Descriptor:
    """A descriptor from foreign JSON, checked (what Docker's Go types would refuse, refused):
    raises BadDocument naming what is wrong."""
    from .digest import _SHA256

    if not isinstance(d, dict):
        raise BadDocument(f"a descriptor must be an object, not {type(d).__name__}")
    digest, size, media_type = d.get("digest"), d.get("size"), d.get("mediaType", "")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise BadDocument(f"descriptor digest {str(digest)[:80]!r} is not sha256:<64 hex>")
    if type(size) is not int or not 0 <= size < 1 << 63:
        raise BadDocument(f"descriptor {digest}: size {str(size)[:40]!r} is not a byte count")
    if not isinstance(media_type, str):
        raise BadDocument(f"descriptor {digest}: mediaType is not a string")
    for key in ("annotations", "platform"):
        if d.get(key) is not None and not isinstance(d[key], dict):
            raise BadDocument(f"descriptor {digest}: {key} is not an object")
    return Descriptor.from_json(d)


def check_config(config: object) -> dict:
    """An image config from outside, checked where pybuild reads it (rootfs, history, the config
    section's typed fields); raises BadDocument. Returns it."""
    from .digest import _SHA256

    if not isinstance(config, dict):
        raise BadDocument(f"the config is a JSON {type(config).__name__}, not an object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise BadDocument("the config has no rootfs.diff_ids list")
    if not all(isinstance(x, str) and _SHA256.match(x) for x in rootfs["diff_ids"]):
        raise BadDocument("the config's rootfs.diff_ids are not all sha256 digests")
    history = config.get("history")
    if history is not None and not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        raise BadDocument("the config's history is not a list of objects")
    for key in ("created", "os", "architecture", "variant", "author"):
        if config.get(key) is not None and not isinstance(config[key], str):
            raise BadDocument(f"the config's {key} is not a string")
    section = config.get("config")
    if section is None:
        return config
    if not isinstance(section, dict):
        raise BadDocument("the config's config section is not an object")
    for key in _STR_LISTS:
        v = section.get(key)
        if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise BadDocument(f"the config's {key} is not a list of strings")
    for key in _STRS:
        if section.get(key) is not None and not isinstance(section[key], str):
            raise BadDocument(f"the config's {key} is not a string")
    for key in _MAPS:
        if section.get(key) is not None and not isinstance(section[key], dict):
            raise BadDocument(f"the config's {key} is not an object")
    return config


def _oci_layer_type(media_type: str) -> str:
    if media_type in (mt.DOCKER_LAYER_GZIP, mt.DOCKER_LAYER_FOREIGN):
        return mt.OCI_LAYER_GZIP
    return media_type or mt.OCI_LAYER_GZIP
