"""Small renderers shared by the CLI modules: aligned tables, human sizes and ages."""
from __future__ import annotations

from datetime import datetime, timezone

import typer


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    for row in [headers, *rows]:
        typer.echo("   ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}"


def human_age(created: str | None) -> str:
    if not created:
        return "N/A"
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00")[:26] + ("+00:00" if created.endswith("Z") else ""))
    except ValueError:
        try:
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            return created
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    secs = (datetime.now(timezone.utc) - when).total_seconds()
    for limit, div, unit in ((120, 1, "seconds"), (7200, 60, "minutes"), (172800, 3600, "hours"),
                             (1209600, 86400, "days"), (5259600, 604800, "weeks"), (63115200, 2629800, "months")):
        if secs < limit:
            return f"{max(int(secs // div), 0)} {unit} ago"
    return f"{int(secs // 31557600)} years ago"
