"""The immutable state of one stage while it is built: each instruction returns a new one
(`dataclasses.replace`), so a cache hit and a miss reach the very same value."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BuildState:
    image: Any                                   # cache.image.Image so far
    key: str                                     # cache key of the last step (the parent of the next)
    args: tuple[tuple[str, str], ...] = ()      # ARGs in scope (name, value), in declaration order
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    stage_name: str | None = None
    steps: int = 0
    cmd_set: bool = False                        # a CMD in this stage (ENTRYPOINT then keeps it)

    @property
    def env(self) -> dict[str, str]:
        """The image's ENV as a mapping (what RUN sees and words expand against, with the ARGs)."""
        out = {}
        for item in self.image.config_section.get("Env") or []:
            name, _, value = item.partition("=")
            out[name] = value
        return out

    def expansion_env(self) -> dict[str, str]:
        """ENV wins over ARG of the same name, as in Docker."""
        return {**dict(self.args), **self.env}
