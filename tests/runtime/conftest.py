"""Fixtures of the sandbox tests: the debootstrap base extracted once per session, and a helper
that runs a command in the sandbox over a fresh overlay on it (so the base stays pristine).

The overlay is mounted in a forked child that first enters a private mount namespace, as the
builder and the runner do: the mount vanishes with that child, and pytest's own namespace never
changes. The child sends back the result, the output and the --explain lines as JSON.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Callable

import pytest


@pytest.fixture(scope="session")
def base_rootfs(base_tarball, tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("base-rootfs")
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(base_tarball), "-C", str(root)], check=True)
    return str(root)


@dataclass
class Outcome:
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    stats: dict | None = None
    output: str = ""
    error: str | None = None          # a SandboxError (or other PybuildError) raised by spawn
    explain: list[str] = field(default_factory=list)


class Sandbox:
    def __init__(self, base: str, scratch: str):
        self.base = base
        self.scratch = scratch

    def run(self, command: str | list[str], on_start: Callable[[int], None] | None = None,
            lowers: list[str] | None = None, **spec) -> Outcome:
        """Run command (a shell line, or an argv) over an overlay of the base; on_start(pid) runs
        in this process while the sandbox is alive."""
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else command
        work = tempfile.mkdtemp(dir=self.scratch)
        report_r, report_w = os.pipe()
        started_r, started_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child leaves through os._exit
            code = 0
            try:
                os.close(report_r), os.close(started_r), os.close(go_w)
                self._child(argv, work, lowers or [self.base], spec, report_w, started_w, go_r)
            except BaseException:  # noqa: BLE001
                import traceback

                os.write(report_w, json.dumps({"error": traceback.format_exc()}).encode())
                code = 1
            os._exit(code)
        os.close(report_w), os.close(started_w), os.close(go_r)
        with os.fdopen(started_r) as f:
            started = f.readline().strip()
        try:
            if started.isdigit() and on_start:
                on_start(int(started))
        finally:
            try:
                os.write(go_w, b"g")
            except BrokenPipeError:  # the child was killed (a test of exactly that)
                pass
            os.close(go_w)
            with os.fdopen(report_r) as f:
                text = f.read()
            os.waitpid(pid, 0)
        return Outcome(**json.loads(text)) if text else Outcome()

    @staticmethod
    def _child(argv, work, lowers, spec, report_w, started_w, go_r) -> None:
        from grammar.errors import PybuildError
        from runtime.mounts import mount_overlay, private_mount_namespace
        from runtime.sandbox import SandboxSpec, spawn

        private_mount_namespace()
        upper, wdir, merged = (os.path.join(work, n) for n in ("upper", "work", "merged"))
        for d in (upper, wdir, merged):
            os.mkdir(d)
        mount_overlay(lowers, upper, wdir, merged)
        out = os.open(os.path.join(work, "output"), os.O_RDWR | os.O_CREAT, 0o600)
        devnull = os.open(os.devnull, os.O_RDONLY)
        lines: list[str] = []
        spec.setdefault("env", {})
        try:
            proc = spawn(SandboxSpec(rootfs=merged, argv=argv, stdin=devnull, stdout=out, stderr=out,
                                     explain=lines.append, **spec))
        except PybuildError as err:
            os.write(started_w, b"-\n")
            os.close(started_w)
            os.read(go_r, 1)
            os.write(report_w, json.dumps({"error": str(err), "explain": lines}).encode())
            return
        os.write(started_w, f"{proc.pid}\n".encode())
        os.close(started_w)
        os.read(go_r, 1)
        result = proc.wait()
        with open(os.path.join(work, "output"), errors="replace") as f:
            output = f.read()
        os.write(report_w, json.dumps({
            "exit_code": result.exit_code, "signal": result.signal, "oom_killed": result.oom_killed,
            "stats": dataclasses.asdict(result.stats) if result.stats else None,
            "output": output, "explain": lines}).encode())


@pytest.fixture
def sandbox(base_rootfs, tmp_path) -> Sandbox:
    return Sandbox(base_rootfs, str(tmp_path))
