"""Progress renderers: events (dicts with a `kind`) from the core -> text. plain: one line per
event (CI logs); json: one JSON object per line (machines); tty: the same lines, coloured with
rich and with each step's duration; quiet: nothing."""
from __future__ import annotations

import json
import time
from typing import Callable, TextIO


def renderer(mode: str, out: TextIO) -> Callable[[dict], None]:
    if mode == "quiet":
        return lambda event: None
    if mode == "json":
        return lambda event: print(json.dumps(event, sort_keys=True), file=out, flush=True)
    if mode == "auto":
        mode = "tty" if out.isatty() else "plain"
    return _Lines(out, tty=mode == "tty")


class _Lines:
    def __init__(self, out: TextIO, tty: bool):
        self.out, self.tty, self.n, self.started = out, tty, 0, time.monotonic()
        self.console = None
        if tty:
            from rich.console import Console

            self.console = Console(file=out, highlight=False)

    def _print(self, text: str, style: str = "") -> None:
        if self.console is not None:
            self.console.print(text, style=style or None, markup=False)
        else:
            print(text, file=self.out, flush=True)

    def __call__(self, event: dict) -> None:
        kind = event.get("kind")
        now = time.monotonic()
        took = f" ({now - self.started:.1f}s)" if self.tty and self.n else ""
        self.started = now
        if kind == "step":
            self.n += 1
            self._print(f"#{self.n}{took} {event.get('text', '').strip()}", "bold")
        elif kind == "cached":
            self._print(f"#{self.n} CACHED", "blue")
        elif kind == "explain":
            self._print(f"#{self.n} cache miss: {event.get('reason')}", "yellow")
        elif kind == "warning":
            self._print(f"warning: {event.get('text')}", "yellow")
        elif kind == "log":
            self._print(f"#{self.n} {event.get('text', '').rstrip()}")
        elif kind in ("status", "transfer"):
            line = transfer_line(event)
            if line:
                self._print(line)
        elif kind == "done":
            self._print(f"built {event.get('image')}{took} " + " ".join(event.get("tags", [])), "green")


_ACTIONS = {"pull": "downloaded", "push": "pushed", "exists": "already there", "mounted": "mounted from another repository"}


def transfer_line(event: dict) -> str | None:
    """A registry event as one line; a transfer only when it ends (lines, not a redrawn bar)."""
    if event.get("kind") == "status":
        return str(event.get("text", ""))
    action, done, total = event.get("action"), event.get("done", 0), event.get("total", 0)
    if action in ("pull", "push") and done != total:
        return None
    return f"{event.get('id')}: {_ACTIONS.get(action, action)} ({done / 1e6:.1f} MB)"


def transfer_printer(out: TextIO) -> Callable[[dict], None]:
    """For pull/push: layers move in parallel threads, so each line is printed whole, under a lock."""
    import threading

    lock = threading.Lock()

    def emit(event: dict) -> None:
        line = transfer_line(event)
        if line:
            with lock:
                print(line, file=out, flush=True)
    return emit
