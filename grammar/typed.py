"""BuildKit's generic nodes -> typed instructions, with the checks BuildKit makes at this step:
argument counts, known flags, forms (SHELL needs JSON), ONBUILD triggers, unknown keywords.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from . import instructions as I
from .errors import DockerfileSyntaxError
from .nodes import NOT_STRINGS, Node

KEYWORDS = ("from", "run", "cmd", "entrypoint", "shell", "copy", "add", "user", "workdir", "stopsignal",
            "maintainer", "env", "label", "arg", "expose", "volume", "healthcheck", "onbuild")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*\Z")


class _Context:
    """Where the instruction is, to make errors that point at it."""

    def __init__(self, node: Node, file: str, source: tuple[str, ...]) -> None:
        self.node = node
        self.file = file
        self.source = source
        self.keyword = node.keyword.upper()

    @property
    def source_line(self) -> str | None:
        n = self.node.start_line
        return self.source[n - 1] if 0 < n <= len(self.source) else None

    def error(self, message: str, hint: str | None = None, near: str | None = None) -> DockerfileSyntaxError:
        column = self.node.column
        line = self.source_line
        if near and line and near in line:
            column = line.index(near) + 1
        return DockerfileSyntaxError(message, file=self.file, line=self.node.start_line, column=column,
                                     source_line=line, hint=hint)

    def span(self) -> I.Span:
        return I.Span(self.file, self.node.start_line, self.node.column, self.node.end_line)


class _Flags:
    """BuildKit's BFlags: `--name=value`, `--name` for booleans; unknown or repeated flags fail."""

    def __init__(self, ctx: _Context, strings: tuple[str, ...] = (), bools: tuple[str, ...] = (),
                 lists: tuple[str, ...] = ()) -> None:
        self.values: dict[str, str | list[str] | bool] = {}
        for raw in ctx.node.flags:
            name, has_value, value = raw[2:].partition("=")
            if name in bools:
                if has_value and value.lower() not in ("true", "false"):
                    raise ctx.error(f"expecting boolean value for flag {name}, not: {value}", near=raw)
                self.values[name] = not has_value or value.lower() == "true"
            elif name in strings or name in lists:
                if not has_value or value == "":
                    raise ctx.error(f"missing a value on flag: --{name}", hint=f"write --{name}=VALUE", near=raw)
                if name in lists:
                    self.values.setdefault(name, [])
                    self.values[name].append(value)  # type: ignore[union-attr]
                elif name in self.values:
                    raise ctx.error(f"duplicate flag specified: --{name}", near=raw)
                else:
                    self.values[name] = value
            else:
                known = [f"--{k}" for k in strings + bools + lists]
                hint = (f"{ctx.keyword} accepts " + ", ".join(known)) if known else f"{ctx.keyword} takes no flags"
                close = difflib.get_close_matches(f"--{name}", known, n=1)
                if close:
                    hint = f"did you mean {close[0]}?"
                raise ctx.error(f"unknown flag for {ctx.keyword}: --{name}", hint=hint, near=raw)

    def str(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def bool(self, name: str) -> bool:
        return bool(self.values.get(name, False))

    def list(self, name: str) -> tuple[str, ...]:
        value = self.values.get(name)
        return tuple(value) if isinstance(value, list) else ()


def _strings(ctx: _Context) -> tuple[str, ...]:
    return tuple(a for a in ctx.node.args if isinstance(a, str))


def _command(ctx: _Context) -> I.Command:
    args = _strings(ctx)
    if ctx.node.is_json:
        return args
    return args[0] if args else ""


def _heredocs(node: Node) -> tuple[I.Heredoc, ...]:
    return tuple(I.Heredoc(h.name, h.content, h.expand, h.chomp, h.fd if h.fd else None) for h in node.heredocs)


def _common(ctx: _Context) -> dict:
    return {"keyword": ctx.keyword.lower(), "span": ctx.span(), "original": ctx.node.original,
            "flags": ctx.node.flags}


def _from(ctx: _Context) -> I.From:
    flags = _Flags(ctx, strings=("platform",))
    args = _strings(ctx)
    if len(args) == 1:
        return I.From(**_common(ctx), image=args[0], platform=flags.str("platform"))
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise ctx.error(f"invalid name for build stage: {args[2]!r}, name can't start with a number or "
                            "contain symbols", near=args[2])
        return I.From(**_common(ctx), image=args[0], stage_name=name, platform=flags.str("platform"))
    if len(args) >= 2 and args[1].startswith("#"):
        raise ctx.error("FROM requires either one or three arguments", near=args[1],
                        hint="`#` starts a comment only at the beginning of a line: move it to a line of its own")
    raise ctx.error("FROM requires either one or three arguments", near=args[1] if len(args) > 1 else None,
                    hint="write `FROM image` or `FROM image AS name`")


def _run(ctx: _Context) -> I.Run:
    flags = _Flags(ctx, strings=("network", "security"), lists=("mount",))
    if not ctx.node.args and not ctx.node.heredocs:
        raise ctx.error("RUN requires at least one argument", hint="write `RUN command`")
    return I.Run(**_common(ctx), command=_command(ctx), is_json=ctx.node.is_json, heredocs=_heredocs(ctx.node),
                 mounts=flags.list("mount"), network=flags.str("network"), security=flags.str("security"))


def _cmd_like(cls):
    def build(ctx: _Context):
        _Flags(ctx)
        return cls(**_common(ctx), command=_command(ctx), is_json=ctx.node.is_json)
    return build


def _shell(ctx: _Context) -> I.Shell:
    _Flags(ctx)
    if not ctx.node.is_json:
        raise ctx.error("SHELL requires the arguments to be in JSON form", hint='write SHELL ["/bin/sh", "-c"]')
    if not ctx.node.args:
        raise ctx.error("SHELL requires at least one argument", hint='write SHELL ["/bin/sh", "-c"]')
    return I.Shell(**_common(ctx), command=_strings(ctx))


def _sources_dest(ctx: _Context) -> tuple[tuple[str, ...], str]:
    args = _strings(ctx)
    if len(args) < 2:
        raise ctx.error(f"{ctx.keyword} requires at least two arguments, but only {len(args)} "
                        f"{'was' if len(args) == 1 else 'were'} provided. Destination could not be determined.",
                        hint=f"write `{ctx.keyword} SOURCE... DEST`")
    return args[:-1], args[-1]


def _copy(ctx: _Context) -> I.Copy:
    flags = _Flags(ctx, strings=("from", "chown", "chmod"), bools=("link", "parents"), lists=("exclude",))
    sources, dest = _sources_dest(ctx)
    return I.Copy(**_common(ctx), sources=sources, dest=dest, chown=flags.str("chown"), chmod=flags.str("chmod"),
                  from_=flags.str("from"), link=flags.bool("link"), parents=flags.bool("parents"),
                  exclude=flags.list("exclude"), heredocs=_heredocs(ctx.node), is_json=ctx.node.is_json)


def _add(ctx: _Context) -> I.Add:
    flags = _Flags(ctx, strings=("chown", "chmod", "checksum"), bools=("link", "keep-git-dir"),
                   lists=("exclude",))
    sources, dest = _sources_dest(ctx)
    keep = flags.bool("keep-git-dir") if "keep-git-dir" in flags.values else None
    return I.Add(**_common(ctx), sources=sources, dest=dest, chown=flags.str("chown"), chmod=flags.str("chmod"),
                 link=flags.bool("link"), exclude=flags.list("exclude"), checksum=flags.str("checksum"),
                 keep_git_dir=keep, heredocs=_heredocs(ctx.node), is_json=ctx.node.is_json)


def _single(cls):
    def build(ctx: _Context):
        _Flags(ctx)
        args = _strings(ctx)
        if len(args) != 1:
            raise ctx.error(f"{ctx.keyword} requires exactly one argument", hint=f"write `{ctx.keyword} VALUE`")
        return cls(**_common(ctx), value=args[0])
    return build


def _pairs(cls):
    def build(ctx: _Context):
        _Flags(ctx)
        args = _strings(ctx)
        if not args:
            raise ctx.error(f"{ctx.keyword} requires at least one argument", hint=f"write `{ctx.keyword} key=value`")
        pairs = tuple((args[i], args[i + 1]) for i in range(0, len(args) - 2, 3))
        if any(not k for k, _ in pairs):
            raise ctx.error(f"{ctx.keyword} names can not be blank", hint="write key=value with a name")
        return cls(**_common(ctx), pairs=pairs)
    return build


def _arg(ctx: _Context) -> I.Arg:
    _Flags(ctx)
    args = _strings(ctx)
    if not args:
        raise ctx.error("ARG requires at least one argument", hint="write `ARG NAME` or `ARG NAME=default`")
    pairs = []
    for word in args:
        name, has_default, default = word.partition("=")
        if not name:
            raise ctx.error(f"ARG names can not be blank: {word!r}", near=word)
        pairs.append((name, default if has_default else None))
    return I.Arg(**_common(ctx), pairs=tuple(pairs))


def _values(cls, json_aware: bool):
    def build(ctx: _Context):
        _Flags(ctx)
        args = _strings(ctx)
        if not args:
            raise ctx.error(f"{ctx.keyword} requires at least one argument")
        if any(a.strip() == "" for a in args):
            raise ctx.error(f"{ctx.keyword} specified can not be an empty string")
        extra = {"is_json": ctx.node.is_json} if json_aware else {}
        return cls(**_common(ctx), values=args, **extra)
    return build


def _healthcheck(ctx: _Context) -> I.Healthcheck:
    flags = _Flags(ctx, strings=("interval", "timeout", "start-period", "start-interval", "retries"))
    args = _strings(ctx)
    if not args:
        raise ctx.error("HEALTHCHECK requires an argument", hint="write `HEALTHCHECK CMD command` or `HEALTHCHECK NONE`")
    kind = args[0].upper()
    if kind == "NONE":
        if len(args) > 1 or ctx.node.flags:
            raise ctx.error("HEALTHCHECK NONE takes no arguments")
        return I.Healthcheck(**_common(ctx), kind="NONE")
    if kind != "CMD":
        raise ctx.error(f"unknown type {args[0]!r} in HEALTHCHECK", hint="try CMD", near=args[0])
    if len(args) < 2 and not ctx.node.is_json:
        raise ctx.error("missing command after HEALTHCHECK CMD")
    retries = flags.str("retries")
    if retries is not None and not retries.isdigit():
        raise ctx.error(f"--retries must be a whole number, not {retries!r}", near="--retries")
    command: I.Command = args[1:] if ctx.node.is_json else args[1]
    return I.Healthcheck(**_common(ctx), kind="CMD", command=command, is_json=ctx.node.is_json,
                         interval=flags.str("interval"), timeout=flags.str("timeout"),
                         start_period=flags.str("start-period"), start_interval=flags.str("start-interval"),
                         retries=int(retries) if retries is not None else None)


def _onbuild(ctx: _Context) -> I.Onbuild:
    _Flags(ctx)
    inner = ctx.node.inner
    if inner is None:
        raise ctx.error("ONBUILD requires at least one argument", hint="write `ONBUILD INSTRUCTION ...`")
    word = inner.keyword.upper()
    if word == "ONBUILD":
        raise ctx.error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if word in ("FROM", "MAINTAINER"):
        raise ctx.error(f"{word} isn't allowed as an ONBUILD trigger")
    positioned = inner._replace(start_line=ctx.node.start_line, end_line=ctx.node.end_line,
                                column=ctx.node.column, heredocs=ctx.node.heredocs)
    return I.Onbuild(**_common(ctx), inner=to_instruction(positioned, ctx.file, ctx.source))


_BUILDERS: dict[str, Callable[[_Context], I.Instruction]] = {
    "from": _from, "run": _run, "cmd": _cmd_like(I.Cmd), "entrypoint": _cmd_like(I.Entrypoint),
    "shell": _shell, "copy": _copy, "add": _add,
    "user": _single(I.User), "workdir": _single(I.Workdir), "stopsignal": _single(I.Stopsignal),
    "maintainer": _single(I.Maintainer),
    "env": _pairs(I.Env), "label": _pairs(I.Label), "arg": _arg,
    "expose": _values(I.Expose, False), "volume": _values(I.Volume, True),
    "healthcheck": _healthcheck, "onbuild": _onbuild,
}


def suggest_keyword(word: str) -> str | None:
    close = difflib.get_close_matches(word.lower(), KEYWORDS, n=1, cutoff=0.6)
    return close[0].upper() if close else None


def _as_dockerd_reads(ctx: _Context) -> Node:
    """The node with JSON form as dockerd 20.10's BuildKit (the oracle) reads it: a JSON array followed
    by more text is exec form there, the text ignored (see grammar.nodes.json_prefix)."""
    node = ctx.node
    if node.json_prefix is None:
        return node
    if not all(isinstance(v, str) for v in node.json_prefix):
        raise ctx.error(NOT_STRINGS, near="[", hint="quote every element of the list")
    args = node.json_prefix if node.keyword.lower() != "healthcheck" else node.args[:1] + node.json_prefix
    return node._replace(args=args, is_json=True, json_prefix=None)


def to_instruction(node: Node, file: str, source: tuple[str, ...]) -> I.Instruction:
    ctx = _Context(node, file, source)
    if node.json_prefix is not None:
        ctx = _Context(_as_dockerd_reads(ctx), file, source)
    builder = _BUILDERS.get(node.keyword.lower())
    if builder is None:
        guess = suggest_keyword(node.keyword)
        raise ctx.error(f"unknown instruction: {node.keyword}",
                        hint=f"did you mean {guess}?" if guess else "see `pybuild check --help` for the instructions")
    return builder(ctx)


def to_dockerfile(tree) -> I.Dockerfile:
    """The typed Dockerfile of a ParseTree (grammar.parser.ParseTree)."""
    instructions = tuple(to_instruction(node, tree.filename, tree.source) for node in tree.nodes)
    return I.Dockerfile(instructions=instructions, directives=dict(tree.directives), escape=tree.escape,
                        warnings=tuple(f"{tree.filename}:{line}: {msg}" for line, msg in tree.warnings),
                        filename=tree.filename, nodes=tree.nodes, source=tree.source)
