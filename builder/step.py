"""The narrow interface an instruction module gets from the build (kaniko's one-file-per-command
model, BuildKit's small optional interfaces): three abilities every step may use, and one more for
the steps that read files. `builder.build._Build` provides both; a test may pass a fake.

Each instruction module exports `apply(build: Steps, state: BuildState, ins) -> BuildState`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

from .cachekey import KeyParts
from .state import BuildState


class Steps(Protocol):
    """What every instruction may do: expand a word, make a layer, change the config."""

    def expand(self, state: BuildState, word: str) -> str:
        """`word` with ARG/ENV expanded against `state` (ENV wins), quotes removed, as BuildKit."""

    def layer(self, state: BuildState, ins: Any, parts: KeyParts, make: Callable[[], Any],
              created_by: str) -> BuildState:
        """A filesystem step: the cached layer for `parts`, else `make()`'s; history recorded."""

    def config(self, state: BuildState, ins: Any, changes: Mapping[str, Any], *,
               args: Mapping[str, str] | None = None, history: bool = True) -> BuildState:
        """A config-only step: the image config changed, the cache key advanced (by the
        instruction and the `args` it read), an empty_layer history entry unless history=False."""


class Sources(Protocol):
    """What a step that reads files also needs (COPY/ADD, RUN --mount, WORKDIR, USER lookups)."""

    store: Any              # cache.store.Store
    opts: Any               # builder.build.BuildOptions
    context: Any            # builder.context.Context, read on first use
    stages: dict[str, BuildState]

    def where(self, ins: Any) -> str:
        """FILE:LINE:COL of `ins`, for error messages."""

    def base_image(self, ref: str, ins: Any) -> Any:
        """An image by reference (the store, else pulled as the build's --pull says)."""
