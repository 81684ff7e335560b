"""Typed instructions, table-driven: one row per instruction shape, then the errors."""
from __future__ import annotations

import pytest

from grammar import instructions as I
from grammar.errors import DockerfileSyntaxError
from grammar.parser import parse


def one(text: str) -> I.Instruction:
    instructions = parse("FROM base\n" + text + "\n", "Dockerfile").instructions
    return instructions[1]


@pytest.mark.parametrize("text, cls, fields", [
    ("RUN echo hi", I.Run, {"command": "echo hi", "is_json": False}),
    ('RUN ["echo", "hi"]', I.Run, {"command": ("echo", "hi"), "is_json": True}),
    ("RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none make",
     I.Run, {"mounts": ("type=cache,target=/c", "type=tmpfs,target=/t"), "network": "none", "command": "make"}),
    ("CMD node index.js", I.Cmd, {"command": "node index.js", "is_json": False}),
    ('CMD ["node", "index.js"]', I.Cmd, {"command": ("node", "index.js"), "is_json": True}),
    ("CMD ['node', 'index.js']", I.Cmd, {"command": "['node', 'index.js']", "is_json": False}),
    ("CMD []", I.Cmd, {"command": (), "is_json": True}),
    ('ENTRYPOINT ["/init"]', I.Entrypoint, {"command": ("/init",)}),
    ('SHELL ["/bin/bash", "-c"]', I.Shell, {"command": ("/bin/bash", "-c")}),
    ("COPY --chown=node:node --chmod=644 a b /dst/", I.Copy,
     {"sources": ("a", "b"), "dest": "/dst/", "chown": "node:node", "chmod": "644", "from_": None}),
    ("COPY --from=build --link /out /app", I.Copy, {"from_": "build", "link": True, "sources": ("/out",)}),
    ('COPY ["a b", "/c d/"]', I.Copy, {"sources": ("a b",), "dest": "/c d/", "is_json": True}),
    ("ADD --checksum=sha256:00 --keep-git-dir=true https://x/y.tar /z", I.Add,
     {"checksum": "sha256:00", "keep_git_dir": True, "sources": ("https://x/y.tar",)}),
    ("USER node:node", I.User, {"value": "node:node"}),
    ("WORKDIR /usr/src/app", I.Workdir, {"value": "/usr/src/app"}),
    ("STOPSIGNAL SIGKILL", I.Stopsignal, {"value": "SIGKILL"}),
    ("MAINTAINER Me <me@x>", I.Maintainer, {"value": "Me <me@x>"}),
    ("ENV A=1 B=\"two words\" C=$A", I.Env, {"pairs": (("A", "1"), ("B", '"two words"'), ("C", "$A"))}),
    ("ENV PATH /usr/bin:$PATH", I.Env, {"pairs": (("PATH", "/usr/bin:$PATH"),)}),
    ("LABEL a=b \"c d\"=e", I.Label, {"pairs": (("a", "b"), ('"c d"', "e"))}),
    ("ARG A B=2 C=", I.Arg, {"pairs": (("A", None), ("B", "2"), ("C", ""))}),
    ("EXPOSE 80 443/tcp", I.Expose, {"values": ("80", "443/tcp")}),
    ('VOLUME ["/data", "/logs"]', I.Volume, {"values": ("/data", "/logs"), "is_json": True}),
    ("VOLUME /data /logs", I.Volume, {"values": ("/data", "/logs"), "is_json": False}),
    ("HEALTHCHECK NONE", I.Healthcheck, {"kind": "NONE", "command": None}),
    ("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/", I.Healthcheck,
     {"kind": "CMD", "command": "curl -f http://localhost/", "interval": "5s", "retries": 3}),
    ('HEALTHCHECK CMD ["/check"]', I.Healthcheck, {"command": ("/check",), "is_json": True}),
    # text after a JSON array: dockerd 20.10's BuildKit (Go's json.Decoder) reads the first value and
    # ignores the rest, so these are exec form there (each confirmed by building it with BuildKit)
    ('ENTRYPOINT ["myentrypoint"] # This should clear out CMD', I.Entrypoint,
     {"command": ("myentrypoint",), "is_json": True}),
    ('CMD [ "a" ]] [', I.Cmd, {"command": ("a",), "is_json": True}),
    ('RUN [ "true" ] && echo hi > /x', I.Run, {"command": ("true",), "is_json": True}),
    ('SHELL ["/bin/sh", "-c"] trailing junk', I.Shell, {"command": ("/bin/sh", "-c")}),
    ('COPY ["a  b", "/c"] junk', I.Copy, {"sources": ("a  b",), "dest": "/c", "is_json": True}),
    ('ADD ["f", "/a"] junk', I.Add, {"sources": ("f",), "dest": "/a", "is_json": True}),
    ('VOLUME ["/v1"] junk', I.Volume, {"values": ("/v1",), "is_json": True}),
    ('HEALTHCHECK --retries=2 CMD ["true"] junk', I.Healthcheck,
     {"kind": "CMD", "command": ("true",), "is_json": True, "retries": 2}),
    # ...but only a complete array: the shell's `[ -f x ]` and broken JSON stay shell form
    ("RUN [ -f x ] && echo y", I.Run, {"command": "[ -f x ] && echo y", "is_json": False}),
    ('CMD ["a", "b" # no ]', I.Cmd, {"command": '["a", "b" # no ]', "is_json": False}),
])
def test_instruction_fields(text, cls, fields):
    ins = one(text)
    assert type(ins) is cls
    for name, value in fields.items():
        assert getattr(ins, name) == value, name
    assert ins.keyword == text.split()[0].lower()
    assert ins.original == text
    assert ins.span == I.Span("Dockerfile", 2, 1, 2)


def test_from_forms():
    d = parse("ARG V=1\nFROM --platform=linux/amd64 alpine:$V AS Build\nfrom scratch\n")
    assert d.global_args[0].pairs == (("V", "1"),)
    first, second = [ins for ins in d.instructions if isinstance(ins, I.From)]
    assert (first.image, first.stage_name, first.platform) == ("alpine:$V", "build", "linux/amd64")
    assert (second.image, second.stage_name) == ("scratch", None)
    assert [f.image for f, _ in d.stages()] == ["alpine:$V", "scratch"]


def test_onbuild_and_heredocs():
    d = parse("FROM a\nONBUILD RUN make\nRUN <<EOF bash\n\techo $X\nEOF\nCOPY <<-'F' /f\n\tbody\nF\n")
    onbuild, run, copy = d.instructions[1:]
    assert isinstance(onbuild.inner, I.Run) and onbuild.inner.command == "make"
    assert run.heredocs == (I.Heredoc("EOF", "\techo $X\n", True, False, None),)
    assert run.span == I.Span("Dockerfile", 3, 1, 5)
    assert copy.heredocs[0].text == "body\n" and not copy.heredocs[0].expand


def test_directives_and_escape():
    d = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN a `\n  b\n")
    assert d.directives == {"syntax": "docker/dockerfile:1", "escape": "`"} and d.escape == "`"
    assert d.instructions[1].command == "a   b"


def test_crlf_and_bom():
    d = parse("\ufeffFROM a\r\nRUN x \\\r\n  y\r\n")
    assert d.instructions[1].command == "x   y"


@pytest.mark.parametrize("text, message, hint, column", [
    ("FORM alpine", "unknown instruction: FORM", "did you mean FROM?", 1),
    ("CPY a b", "unknown instruction: CPY", "did you mean COPY?", 1),
    ("FROM a b", "FROM requires either one or three arguments", "write `FROM image` or `FROM image AS name`", 8),
    ("FROM node:12 #base", "FROM requires either one or three arguments", "comment only at the beginning", 14),
    ("FROM a AS 1x", "invalid name for build stage", None, 11),
    ("COPY --user=me a b", "unknown flag for COPY: --user", "COPY accepts", 6),
    ("COPY --chwon=a a b", "unknown flag for COPY: --chwon", "did you mean --chown?", 6),
    ("COPY a", "COPY requires at least two arguments", "COPY SOURCE... DEST", 1),
    ("COPY --from a b", "missing a value on flag: --from", "--from=VALUE", 6),
    ("COPY --from=a --from=b a b", "duplicate flag specified: --from", None, 15),
    ("RUN --network=host --netwrk=none x", "unknown flag for RUN: --netwrk", "did you mean --network?", 20),
    ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form", None, 1),
    ("HEALTHCHECK", "HEALTHCHECK requires an argument", None, 1),
    ("HEALTHCHECK CONNECT x", "unknown type 'CONNECT' in HEALTHCHECK", "try CMD", 13),
    ("HEALTHCHECK --retries=x CMD y", "--retries must be a whole number", None, 13),
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD", None, 1),
    ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger", None, 1),
    ("USER", "USER requires exactly one argument", None, 1),
    ("EXPOSE", "EXPOSE requires at least one argument", None, 1),
    ("ENV", "ENV requires at least one argument", None, 1),
    ("ENV A", "ENV must have two arguments", None, 1),
    ("LABEL a=b c", "can't find = in", None, 1),
    ('CMD ["a", 1]', "arrays must be comprised of strings only", None, 1),
    ('CMD ["a", 1] x', "arrays must be comprised of strings only", "quote every element", 5),
    ("RUN <<EOF\nno end", "unterminated heredoc", "EOF", 1),
])
def test_errors_name_line_column_and_say_what_to_do(text, message, hint, column):
    with pytest.raises(DockerfileSyntaxError) as info:
        parse("FROM base\n" + text + "\n", "app/Dockerfile")
    err = info.value
    assert (err.file, err.line) == ("app/Dockerfile", 2)
    assert message in err.message
    if hint:
        assert hint in (err.hint or "")
    assert err.column == column
    shown = str(err)
    assert shown.startswith(f"app/Dockerfile:2:{column}: ")
    if err.source_line is not None:
        lines = shown.splitlines()
        assert lines[1].endswith(text.splitlines()[0]) and lines[2].index("^") - lines[2].index("|") - 2 == column - 1
