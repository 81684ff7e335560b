"""Typed instructions: one frozen dataclass per Dockerfile instruction.

Each carries its source span and the assembled line (`original`). Words keep their `$VAR`s:
the builder expands them at dispatch (grammar.expand), against the state of that moment.
Shell form is a `str`, exec (JSON) form a `tuple[str, ...]` with `is_json=True`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from .nodes import Node

Command = Union[tuple[str, ...], str]


@dataclass(frozen=True)
class Span:
    file: str
    line: int        # 1-based first line
    column: int      # 1-based column of the keyword
    end_line: int    # last line, continuation lines and heredoc bodies included

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    expand: bool        # False when the marker was quoted: no variable expansion in the body
    chomp: bool         # `<<-`: leading tabs removed from the body's lines
    fd: int | None      # `3<<EOF`; None for the default (stdin / a file source)

    @property
    def text(self) -> str:
        """The body as the instruction sees it (leading tabs removed for `<<-`)."""
        if not self.chomp:
            return self.content
        return "".join(line.lstrip("\t") for line in self.content.splitlines(keepends=True))


@dataclass(frozen=True, kw_only=True)
class Instruction:
    keyword: str                 # lower-case: "from", "run", ...
    span: Span
    original: str                # the assembled line as written (continuations joined)
    flags: tuple[str, ...] = ()  # raw `--name=value` words


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    image: str
    stage_name: str | None = None
    platform: str | None = None


@dataclass(frozen=True, kw_only=True)
class Run(Instruction):
    command: Command
    is_json: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[str, ...] = ()
    network: str | None = None
    security: str | None = None


@dataclass(frozen=True, kw_only=True)
class _Command(Instruction):
    """Exec form (tuple, is_json) or shell form (str). Private base: not a type to dispatch on."""

    command: Command
    is_json: bool = False


@dataclass(frozen=True, kw_only=True)
class Cmd(_Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Entrypoint(_Command):
    pass


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    command: tuple[str, ...]
    is_json: bool = True


@dataclass(frozen=True, kw_only=True)
class Copy(Instruction):
    sources: tuple[str, ...]
    dest: str
    chown: str | None = None
    chmod: str | None = None
    from_: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()
    is_json: bool = False


@dataclass(frozen=True, kw_only=True)
class Add(Instruction):
    sources: tuple[str, ...]
    dest: str
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    exclude: tuple[str, ...] = ()
    checksum: str | None = None
    keep_git_dir: bool | None = None
    heredocs: tuple[Heredoc, ...] = ()
    is_json: bool = False


@dataclass(frozen=True, kw_only=True)
class _Valued(Instruction):
    """An instruction whose argument is the whole rest of the line."""

    value: str


@dataclass(frozen=True, kw_only=True)
class User(_Valued):
    pass


@dataclass(frozen=True, kw_only=True)
class Workdir(_Valued):
    pass


@dataclass(frozen=True, kw_only=True)
class Stopsignal(_Valued):
    pass


@dataclass(frozen=True, kw_only=True)
class Maintainer(_Valued):
    pass


@dataclass(frozen=True, kw_only=True)
class _Pairs(Instruction):
    pairs: tuple[tuple[str, str], ...]   # values raw (quotes kept): the builder expands them


@dataclass(frozen=True, kw_only=True)
class Env(_Pairs):
    pass


@dataclass(frozen=True, kw_only=True)
class Label(_Pairs):
    pass


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    pairs: tuple[tuple[str, str | None], ...]   # None: no default


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    values: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    values: tuple[str, ...]
    is_json: bool = False


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    kind: str                            # "CMD" | "NONE"
    command: Command | None = None
    is_json: bool = False
    interval: str | None = None
    timeout: str | None = None
    start_period: str | None = None
    start_interval: str | None = None
    retries: int | None = None


@dataclass(frozen=True, kw_only=True)
class Onbuild(Instruction):
    inner: Instruction


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]
    directives: dict[str, str] = field(default_factory=dict)
    escape: str = "\\"
    warnings: tuple[str, ...] = ()
    filename: str = "Dockerfile"
    nodes: tuple["Node", ...] = field(default=(), repr=False, compare=False)   # BuildKit's generic tree
    source: tuple[str, ...] = field(default=(), repr=False, compare=False)     # physical lines

    def stages(self) -> list[tuple[From, list[Instruction]]]:
        """Instructions grouped under their FROM (ARGs before the first FROM are left out)."""
        stages: list[tuple[From, list[Instruction]]] = []
        for ins in self.instructions:
            if isinstance(ins, From):
                stages.append((ins, []))
            elif stages:
                stages[-1][1].append(ins)
        return stages

    @property
    def global_args(self) -> tuple[Arg, ...]:
        """ARGs before the first FROM: they may be used in FROM lines."""
        out = []
        for ins in self.instructions:
            if isinstance(ins, From):
                break
            if isinstance(ins, Arg):
                out.append(ins)
        return tuple(out)
