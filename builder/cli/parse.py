"""`pybuild parse`: print a Dockerfile's parse, in BuildKit's dump format or as JSON."""
from __future__ import annotations

import typer


def parse(file: str = typer.Argument("Dockerfile", metavar="[FILE]", help="The Dockerfile (`-` reads stdin)."),
          fmt: str = typer.Option("buildkit", "--format", help="buildkit (BuildKit's `result` dump) or json.")) -> None:
    """Print the parse of a Dockerfile, as BuildKit's parser dumps it (or as JSON)."""
    import json
    import sys

    from grammar.errors import UsageError
    from grammar.parser import parse_tree, read_dockerfile

    if fmt not in ("buildkit", "json"):
        raise UsageError(f"--format {fmt}: use buildkit or json")
    text, name = read_dockerfile(file)
    tree = parse_tree(text, name)
    if fmt == "buildkit":
        sys.stdout.buffer.write(tree.dump().encode("utf-8", "surrogateescape"))
        return
    typer.echo(json.dumps(tree_as_json(tree), indent=1, ensure_ascii=False))


def tree_as_json(tree) -> dict:
    def node(n) -> dict:
        out = {"keyword": n.keyword, "flags": list(n.flags), "json": n.is_json,
               "args": [node(a) if not isinstance(a, str) else a for a in n.args], "original": n.original}
        if n.start_line:
            out.update(startLine=n.start_line, endLine=n.end_line, column=n.column)
        if n.heredocs:
            out["heredocs"] = [{"name": h.name, "content": h.content, "expand": h.expand, "chomp": h.chomp,
                                "fd": h.fd} for h in n.heredocs]
        if n.comments:
            out["comments"] = list(n.comments)
        return out

    return {"file": tree.filename, "escape": tree.escape, "directives": tree.directives,
            "warnings": [{"line": line, "message": msg} for line, msg in tree.warnings],
            "instructions": [node(n) for n in tree.nodes]}


def register(app: typer.Typer) -> None:
    app.command("parse")(parse)
