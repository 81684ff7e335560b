"""The monitor's process, forked as early as `run` can (before the heavier imports of the CLI):
while the CLI resolves the image and writes the record, the monitor loads its own modules (the
sandbox, mounts, cgroups, the store) on the other core, then waits for `launch`. Kept free of
imports beyond os and json so that the fork comes first."""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .monitor import Attach, Started


class Prefork:
    """A monitor forked before its container exists: while the CLI resolves the image and writes
    the record, it loads the sandbox's modules on the other core (~20 ms of every `run`). It then
    waits for `launch`; if the CLI ends first (an error), the pipe's EOF ends it too."""

    def __init__(self) -> None:
        go_r, self._go_w = os.pipe()
        self._ready_r, ready_w = os.pipe()
        self._done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the first child: only a step to the double fork
            status = 0
            try:
                for fd in (self._go_w, self._ready_r, self._done_r):
                    os.close(fd)
                os.setsid()  # its own session: outlives the CLI and its terminal
                if os.fork() == 0:
                    _preforked_main(go_r, ready_w, done_w)
            except BaseException:
                status = 1
            os._exit(status)
        for fd in (go_r, ready_w, done_w):
            os.close(fd)
        os.waitpid(pid, 0)

    def cancel(self) -> None:
        """No container after all (an error before launch): end the monitor and wait for it, so
        that nothing of this run outlives the CLI."""
        os.close(self._go_w)
        os.close(self._done_r)
        with os.fdopen(self._ready_r, "rb") as f:
            f.read()  # EOF once the monitor has ended

    def launch(self, root: str, cid: str, attach: Attach | None) -> Started:
        """Hand container cid to the monitor (attach: a monitor.Attach or None); return once it
        runs (or raise monitor.ContainerStartError saying why not)."""
        from .monitor import ContainerStartError, Started

        go = {"root": root, "cid": cid, "attach": [attach.stdin, attach.stdout, attach.stderr] if attach else None}
        try:
            os.write(self._go_w, json.dumps(go).encode() + b"\n")
        except OSError:
            pass  # the monitor died: the report below says so
        os.close(self._go_w)
        # One line, not EOF: with --init the container's PID 1 is a fork of the monitor and keeps a
        # copy of ready_w for as long as the container runs.
        with os.fdopen(self._ready_r, "rb") as f:
            report = f.readline()
        try:
            msg = json.loads(report.decode() or "{}")
        except ValueError:
            msg = {}
        if "pid" not in msg:
            os.close(self._done_r)
            error = msg.get("error") or "the monitor ended before the container started"
            raise ContainerStartError(f"container {cid[:12]}: {error}", hint=msg.get("hint"))
        return Started(msg["pid"], msg["monitor_pid"], self._done_r)


def _preforked_main(go_r: int, ready_w: int, done_w: int) -> None:
    """Load what the monitor will need, then wait for the container to run. Never returns."""
    try:
        import runtime.init  # noqa: F401
        import runtime.mounts  # noqa: F401
        import runtime.sandbox  # noqa: F401
        from cache.store import Store  # noqa: F401

        from .monitor import Attach, _monitor_main

        with os.fdopen(go_r, "rb") as f:
            line = f.readline()
        go = json.loads(line) if line else None
    except BaseException:  # noqa: BLE001 - nothing started; the CLI sees EOF on ready
        os._exit(1)
    if not go:
        os._exit(0)  # the CLI ended without a container to run
    attach = Attach(*go["attach"]) if go["attach"] else None
    _monitor_main(go["root"], go["cid"], attach, ready_w, done_w)
