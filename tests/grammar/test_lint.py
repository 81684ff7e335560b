"""Lint rules, table-driven; the classic tutorial's own mistakes are the first rows."""
from __future__ import annotations

import pytest

from grammar.lint import lint
from grammar.parser import parse, parse_tree


def warnings_for(text: str):
    return lint(parse_tree(text, "Dockerfile"))


@pytest.mark.parametrize("text, rule, line, column, fix", [
    # the tutorial's Dockerfiles
    ("FROM node:12-strectch #our base image\n", "comment-in-arguments", 1, 23, "on a line of its own"),
    ("FROM node:12-strectch #our base image\n", "from-arguments", 1, 23, "FROM node:12-strectch"),
    ('FROM a\nCMD ["node", "-e", "console.log(\\"omg hi lol\\")"\n', "json-unclosed", 2, 5,
     'CMD ["node", "-e", "console.log(\\"omg hi lol\\")"]'),
    ("FROM a\nCOPY index.js index.js # from source to dest\n", "comment-in-arguments", 2, 24,
     "put `# from source to dest` on a line of its own"),
    ("FROM a\nCMD ['node', 'index.js']\n", "json-single-quotes", 2, 5, 'CMD ["node", "index.js"]'),
    # the other rules
    ('FROM a\nENTRYPOINT ["x"] # why\n', "comment-in-arguments", 2, 18, "on a line of its own"),
    ('FROM a\nRUN ["a" "b"]\n', "json-invalid", 2, 5, "JSON array"),
    ('FROM a\nCMD ["a"] junk\n', "json-invalid", 2, 11, "remove `junk`"),
    ("FROM a as b\n", "from-as-casing", 1, 7, "FROM a AS b"),
    ("from a AS b\n", "from-as-casing", 1, 7, "from a as b"),
    ("FROM a\nMAINTAINER Me <me@x>\n", "maintainer-deprecated", 2, 1, 'org.opencontainers.image.authors="Me <me@x>"'),
    ("FROM a\nCMD node index.js\n", "json-args-recommended", 2, 1, 'CMD ["node", "index.js"]'),
    ("FROM a\nADD index.js /app/\n", "add-for-copy", 2, 1, "use COPY"),
    ("FROM a\nWORKDIR /src/$APP_DIR\n", "undefined-variable", 2, 14, "ARG APP_DIR"),
    ("FROM a\nCOPY ${SRC:-.} /x\n", "undefined-variable", 2, 6, "ARG SRC"),
    ("FROM a\nFORM b\n", "unknown-instruction", 2, 1, "did you mean FROM?"),
    ("FROM a\nRUN a \\\n\n  b\n", "empty-continuation", 4, 1, "remove the empty line"),
])
def test_rule(text, rule, line, column, fix):
    found = [w for w in warnings_for(text) if w.rule == rule]
    assert found, f"no {rule} in {warnings_for(text)}"
    w = found[0]
    assert (w.line, w.column) == (line, column)
    assert fix in w.fix
    assert str(w).startswith(f"Dockerfile:{line}:{column}: ")


@pytest.mark.parametrize("text", [
    "FROM a AS b\n",
    'FROM a\nCMD ["node", "index.js"]\n',
    "FROM a\nRUN [ -f /x ] && echo yes\n",
    "FROM a\nRUN echo hi # a shell comment is fine in RUN\n",
    "ARG V=1\nFROM a:$V\nARG V\nENV P=$PATH:/x HOME2=$HOME\nWORKDIR /$V\n",
    "FROM a\nARG TARGETARCH\nCOPY out-$TARGETARCH /x\nCOPY --from=b ${BUILDPLATFORM} /y\n",
    "FROM a\nADD https://example.com/x.tgz /x\nADD rootfs.tar.gz /\n",
    "FROM a\nENV A=1\nLABEL v=$A\n",
])
def test_clean_files_have_no_warnings(text):
    assert warnings_for(text) == []


def test_lint_takes_a_typed_dockerfile_too():
    d = parse("FROM a\nMAINTAINER me\n")
    assert [w.rule for w in lint(d)] == ["maintainer-deprecated"]


def test_stage_scope_of_variables():
    text = "FROM a\nARG X\nFROM b\nWORKDIR /$X\n"  # ARG X belongs to the first stage only
    assert [w.rule for w in warnings_for(text)] == ["undefined-variable"]
