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


class DockerfileSyntaxError(PybuildError):
    """A Dockerfile that cannot be parsed or typed: names file:line:col, shows the line with a caret.

    `str()` starts with one line `FILE:LINE:COL: message (hint)`; when the source line is known,
    it is shown below it with a caret under the column.
    """

    def __init__(self, message: str, *, file: str = "Dockerfile", line: int = 0, column: int = 1,
                 hint: str | None = None, source_line: str | None = None):
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.column = column
        self.source_line = source_line

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        head = f"{where}: {super().__str__()}"
        if self.source_line is None:
            return head
        text = self.source_line.rstrip("\r\n").expandtabs(1)
        gutter = f"{self.line} | "
        return f"{head}\n{gutter}{text}\n{' ' * (len(gutter) - 2)}| {' ' * max(self.column - 1, 0)}^"


class ExpandError(PybuildError):
    """A word that the shell-lexer rules reject: `${V:?msg}` on an unset V, `${}`, an open quote."""
