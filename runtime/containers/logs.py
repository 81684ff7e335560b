"""container.log: json lines, one per chunk of output, as Docker's json-file driver writes them."""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Iterator

from .records import now_iso


class LogWriter:
    """Appends {"log", "stream", "time"} lines; shared by the stdout and stderr relays."""

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._lock = threading.Lock()

    def write(self, stream: str, data: bytes) -> None:
        line = json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream, "time": now_iso()}) + "\n"
        with self._lock:
            os.write(self._fd, line.encode())

    def close(self) -> None:
        os.close(self._fd)


def _entries(path: str, offset: int = 0) -> tuple[list[dict], int]:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]
    out = []
    for line in complete.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out, offset + len(complete)


def read_logs(path: str, tail: int | None = None, follow: bool = False,
              still_running=lambda: False, poll_s: float = 0.1) -> Iterator[dict]:
    """Entries of the log; with follow, keep yielding new ones until still_running() turns false."""
    entries, offset = _entries(path)
    yield from (entries[-tail:] if tail is not None and tail >= 0 else entries) if tail != 0 else []
    while follow:
        alive = still_running()
        new, offset = _entries(path, offset)
        yield from new
        if not alive and not new:
            return
        time.sleep(poll_s)
