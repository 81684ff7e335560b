"""`pybuild check`: lint a Dockerfile (warnings with line:col and a fix), then type-check it."""
from __future__ import annotations

import os

import typer


def check(path: str = typer.Argument(".", metavar="[PATH]", help="The build context (its Dockerfile is checked)."),
          file: str = typer.Option(None, "-f", "--file", help="The Dockerfile (default PATH/Dockerfile; `-` reads stdin)."),
          strict: bool = typer.Option(False, "--strict", help="Fail (exit 1) when there are warnings.")) -> None:
    """Lint a Dockerfile: what parses but is likely not what was meant, each with a fix."""
    import sys

    from grammar.errors import PybuildError
    from grammar.lint import lint
    from grammar.parser import parse_tree, read_dockerfile
    from grammar.typed import to_dockerfile

    text, name = read_dockerfile(file if file else os.path.join(path, "Dockerfile"))
    tree = parse_tree(text, name)
    warnings = lint(tree)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    to_dockerfile(tree)  # argument counts, flags, unknown instructions: raises with file:line:col
    if warnings and strict:
        raise PybuildError(f"{name}: {len(warnings)} warning(s) and --strict", hint="fix them or drop --strict")
    count = len(tree.nodes)
    typer.echo(f"{name}: {count} instruction{'s' if count != 1 else ''}, {len(warnings)} warning"
               f"{'s' if len(warnings) != 1 else ''}")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
