"""Image references, normalized as Docker does (distribution/reference).

`node` -> docker.io/library/node:latest; `localhost:5000/app` keeps its registry; a digest
(`@sha256:...`) may stand with or without a tag; repository paths are lower-case.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
LEGACY_REGISTRIES = ("index.docker.io", "registry-1.docker.io")

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
NAME_MAX = 255


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repo_name(self) -> str:
        """registry/repository, without tag or digest: docker.io/library/node."""
        return f"{self.registry}/{self.repository}"

    def _with_tag_and_digest(self, repo: str) -> str:
        return repo + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def name(self) -> str:
        """The full normalized reference: docker.io/library/node:latest[@sha256:...]."""
        return self._with_tag_and_digest(self.repo_name)

    @property
    def familiar_repo(self) -> str:
        """The repository as `docker images` shows it: node, user/app, localhost:5000/app."""
        if self.registry == DEFAULT_REGISTRY:
            return self.repository.removeprefix("library/") if self.repository.count("/") == 1 else self.repository
        return self.repo_name

    @property
    def familiar(self) -> str:
        """As Docker prints it: node:latest, user/app:1, localhost:5000/app:v1."""
        return self._with_tag_and_digest(self.familiar_repo)

    def __str__(self) -> str:
        return self.name


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        return DEFAULT_REGISTRY, name
    return first, rest


def parse_reference(text: str, *, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse and normalize; `default_tag` is added when neither tag nor digest is given."""
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference {text!r}: empty or surrounded by spaces")
    if _HEX64.match(text):
        raise InvalidReference(f"invalid reference {text!r}: a 64-hex name is an image ID, not a repository")
    rest, at, digest = text.partition("@")
    if at:
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid reference {text!r}: bad digest {digest!r}")
        if digest.startswith("sha256:") and not _SHA256.match(digest):
            raise InvalidReference(f"invalid reference {text!r}: a sha256 digest is 64 lower-case hex digits")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid reference {text!r}: bad tag {tag!r} (letters, digits, _ . -; at most 128)")
    registry, repository = _split_domain(rest)
    if registry in LEGACY_REGISTRIES:
        registry = DEFAULT_REGISTRY
    if not _DOMAIN.match(registry):
        raise InvalidReference(f"invalid reference {text!r}: bad registry name {registry!r}")
    if not _PATH.match(repository):
        lower = "" if repository.lower() == repository else " (repository names must be lower-case)"
        raise InvalidReference(f"invalid reference {text!r}: bad repository name {repository!r}{lower}")
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if len(f"{registry}/{repository}") > NAME_MAX:
        raise InvalidReference(f"invalid reference {text!r}: name longer than {NAME_MAX} characters")
    if tag is None and not at and default_tag:
        tag = default_tag
    return Reference(registry, repository, tag, digest or None)


def normalize(text: str) -> str:
    """The full normalized form, as stored in index.json's ref.name annotation."""
    return parse_reference(text).name


def looks_like_id(text: str) -> bool:
    """A full or short image ID (hex, optionally `sha256:` prefixed)."""
    hexpart = text.removeprefix("sha256:")
    return 4 <= len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart)
