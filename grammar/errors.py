"""The root of pybuild's error hierarchy.

It lives here, in the wing that depends on nothing, so that every wing (grammar, cache, runtime,
builder) can derive its errors from one class without importing a wing above it. This module
imports nothing but the standard library.
"""
from __future__ import annotations


class PybuildError(Exception):
    """An error the user can act on. `str()` is one line that says what went wrong and what to do.

    The CLI prints it as one line on stderr and exits 1 (a traceback only with --debug).
    `hint`, when set, is appended as advice ("did you mean COPY?", "run `pybuild pull ...`").
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(PybuildError):
    """Bad flags or arguments: exit 2, as usage errors do."""

    exit_code = 2
