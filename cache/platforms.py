"""Platforms as `--platform` spells them (os/arch[/variant]) and as images and indexes record them:
one matcher for the store's indexes, loaded archives and registry pulls."""
from __future__ import annotations

from .image import host_architecture


def split_platform(platform: str | None) -> tuple[str, str, str]:
    """(os, architecture, variant); None is this host (linux)."""
    if not platform:
        return "linux", host_architecture(), ""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        from grammar.errors import UsageError

        raise UsageError(f"--platform {platform!r}: expected os/arch or os/arch/variant, e.g. linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def matches(fields: dict, platform: str | None) -> bool:
    """Whether an image config (or an index entry's "platform") is the platform asked for."""
    want_os, want_arch, want_variant = split_platform(platform)
    if fields.get("os", "linux") != want_os or fields.get("architecture") != want_arch:
        return False
    variant = fields.get("variant") or ("v8" if want_arch == "arm64" else "")
    return not want_variant or variant == want_variant
