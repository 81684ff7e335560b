"""Container lifecycle commands: ps, stop, kill, start, restart, rm, logs, exec, pause, unpause,
top, stats, wait, export, cp, and the `container` group (ls, inspect, prune, ...)."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import List, Optional

import typer

container_app = typer.Typer(help="Manage containers.", no_args_is_help=True)


def _records(ctx: typer.Context):
    from runtime.containers.records import Records

    from ._store import open_store

    return Records(open_store(ctx).root)


def _status_text(c) -> str:
    from ._table import human_age

    st = c.state
    if st.status in ("running", "starting"):
        return f"Up {human_age(st.started_at).removesuffix(' ago')}"
    if st.status == "paused":
        return f"Up {human_age(st.started_at).removesuffix(' ago')} (Paused)"
    if st.status == "exited":
        return f"Exited ({st.exit_code}) {human_age(st.finished_at)}"
    return st.status.capitalize()


def ps(ctx: typer.Context, all_: bool = typer.Option(False, "-a", "--all", help="Also stopped ones."),
       quiet: bool = typer.Option(False, "-q", "--quiet", help="Only ids.")) -> None:
    """List containers."""
    from runtime.containers.lifecycle import all_containers, is_running

    from ._table import human_age, table

    shown = [c for c in all_containers(_records(ctx)) if all_ or is_running(c)]
    if quiet:
        for c in shown:
            typer.echo(c.short_id)
        return
    rows = [[c.short_id, c.config.image, json.dumps(" ".join(c.config.argv))[:30], human_age(c.created),
             _status_text(c), ", ".join(c.state.ports) if is_running(c) else "", c.name] for c in shown]
    table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows)


def _each(ctx, refs: list[str], action) -> None:
    """Apply action to each container; report every failure, exit 1 if any."""
    from grammar.errors import PybuildError
    from runtime.containers.lifecycle import find

    records = _records(ctx)
    failed = False
    for ref in refs:
        try:
            action(records, find(records, ref))
            typer.echo(ref)
        except PybuildError as err:
            typer.echo(f"pybuild: error: {err}", err=True)
            failed = True
    if failed:
        raise typer.Exit(1)


def stop(ctx: typer.Context, refs: List[str] = typer.Argument(...),
         time_: Optional[int] = typer.Option(None, "-t", "--time", help="Seconds before SIGKILL (default: --stop-timeout).")) -> None:
    """Stop containers: the stop signal, then SIGKILL after the timeout."""
    from runtime.containers import lifecycle

    _each(ctx, refs, lambda r, c: lifecycle.stop(r, c, time_))


def kill(ctx: typer.Context, refs: List[str] = typer.Argument(...),
         signal_: str = typer.Option("KILL", "-s", "--signal")) -> None:
    """Send a signal to containers (SIGKILL: every process of the container)."""
    from runtime.containers import lifecycle

    sig = lifecycle.parse_signal(signal_)
    _each(ctx, refs, lambda r, c: lifecycle.kill(r, c, sig))


def _start_one(records, c) -> None:
    from runtime.containers.lifecycle import is_running

    from .run import start_and_attach

    if not is_running(c):
        start_and_attach(records, c.id, attached=False, interactive=False, tty=False)


def start(ctx: typer.Context, refs: List[str] = typer.Argument(...)) -> None:
    """Start stopped containers again (their own layer is kept)."""
    _each(ctx, refs, _start_one)


def restart(ctx: typer.Context, refs: List[str] = typer.Argument(...),
            time_: Optional[int] = typer.Option(None, "-t", "--time")) -> None:
    """Stop, then start containers."""
    from runtime.containers import lifecycle

    _each(ctx, refs, lambda r, c: _start_one(r, lifecycle.stop(r, c, time_)))


def rm(ctx: typer.Context, refs: List[str] = typer.Argument(...),
       force: bool = typer.Option(False, "-f", "--force", help="Kill it first if it runs.")) -> None:
    """Remove containers (their processes, cgroups and files)."""
    from runtime.containers import lifecycle

    _each(ctx, refs, lambda r, c: lifecycle.remove(r, c, force))


def pause(ctx: typer.Context, refs: List[str] = typer.Argument(...)) -> None:
    """Freeze every process of containers (freezer cgroup)."""
    from runtime.containers import lifecycle

    _each(ctx, refs, lifecycle.pause)


def unpause(ctx: typer.Context, refs: List[str] = typer.Argument(...)) -> None:
    """Thaw paused containers."""
    from runtime.containers import lifecycle

    _each(ctx, refs, lifecycle.unpause)


def wait(ctx: typer.Context, refs: List[str] = typer.Argument(...)) -> None:
    """Block until containers exit; print their exit codes."""
    from runtime.containers import lifecycle

    records = _records(ctx)
    for ref in refs:
        c = lifecycle.wait(records, lifecycle.find(records, ref))
        typer.echo(str(c.state.exit_code))


def logs(ctx: typer.Context, ref: str = typer.Argument(...),
         follow: bool = typer.Option(False, "-f", "--follow"),
         tail: Optional[str] = typer.Option(None, "-n", "--tail", help="Last N lines (or all).")) -> None:
    """Show a container's output (json-lines log, as docker's json-file driver)."""
    from runtime.containers import lifecycle
    from runtime.containers.logs import read_logs
    from runtime.containers.monitor import LOG_NAME

    records = _records(ctx)
    c = lifecycle.find(records, ref)
    n = None if tail in (None, "all") else int(tail)
    alive = lambda: lifecycle.is_running(lifecycle.find(records, c.id))  # noqa: E731
    for entry in read_logs(records.path(c.id, LOG_NAME), n, follow, alive):
        stream = sys.stderr if entry.get("stream") == "stderr" else sys.stdout
        stream.write(entry.get("log", ""))
        stream.flush()


def exec_(ctx: typer.Context, ref: str = typer.Argument(...), command: List[str] = typer.Argument(...),
          interactive: bool = typer.Option(False, "-i", "--interactive"),
          tty: bool = typer.Option(False, "-t", "--tty"),
          user: Optional[str] = typer.Option(None, "-u", "--user"),
          workdir: Optional[str] = typer.Option(None, "-w", "--workdir"),
          env: List[str] = typer.Option([], "-e", "--env")) -> None:
    """Run a command in a running container (its namespaces and cgroups)."""
    from runtime.containers import lifecycle
    from runtime.containers.records import ContainerConflict
    from runtime.exec import ExecSpec, container_caps, exec_in

    from .run import merge_env

    records = _records(ctx)
    c = lifecycle.find(records, ref)
    if c.state.status != "running":
        raise ContainerConflict(f"container {c.name} is not running", hint=f"`pybuild start {c.name}` first")
    cfg = c.config
    spec = ExecSpec(argv=tuple(command), env=dict(merge_env([f"{k}={v}" for k, v in cfg.env], list(env))),
                    cap_mask=container_caps(c.state.cap_mask, c.state.pid, cfg.cap_add, cfg.cap_drop, cfg.privileged),
                    privileged=cfg.privileged, user=user if user is not None else cfg.user,
                    workdir=workdir or cfg.workdir, seccomp=cfg.seccomp)
    sys.stdout.flush()
    raise typer.Exit(exec_in(c.state.pid, c.state.cgroups, spec))


def top(ctx: typer.Context, ref: str = typer.Argument(...)) -> None:
    """The processes of a container."""
    from runtime.containers import lifecycle

    from ._table import table

    c = lifecycle.find(_records(ctx), ref)
    table(["PID", "UID", "CMD"], [[str(p), u, cmd] for p, u, cmd in lifecycle.top(c)])


def stats(ctx: typer.Context, refs: Optional[List[str]] = typer.Argument(None),
          no_stream: bool = typer.Option(False, "--no-stream", help="One sample, then exit.")) -> None:
    """CPU % (over 1 s, by the cgroup's own accounting), memory use and limit, processes."""
    from runtime.containers import lifecycle

    from ._table import human_size, table

    records = _records(ctx)
    shown = [lifecycle.find(records, r) for r in refs] if refs else \
        [c for c in lifecycle.all_containers(records) if lifecycle.is_running(c)]
    while True:
        first = {c.id: (lifecycle.cgroups_of(c).stats(), time.monotonic()) for c in shown}
        time.sleep(1)
        rows = []
        for c in shown:
            u = lifecycle.cgroups_of(c).stats()
            u0, t0 = first[c.id]
            cpu = (u.cpu_ns - u0.cpu_ns) / ((time.monotonic() - t0) * 1e9) * 100 if u.cpu_ns is not None and u0.cpu_ns is not None else 0.0
            mem = f"{human_size(u.memory_bytes or 0)} / {human_size(u.memory_limit) if u.memory_limit else 'unlimited'}"
            rows.append([c.short_id, c.name, f"{cpu:.2f}%", mem, str(u.pids or 0)])
        table(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS"], rows)
        if no_stream:
            return


def container_json(c) -> dict:
    """`docker inspect`'s shape for a container (also what `pybuild inspect NAME` shows for one)."""
    from dataclasses import asdict

    st = c.state
    return {
        "Id": c.id, "Name": "/" + c.name, "Created": c.created, "Image": c.config.image_id,
        "Path": c.config.argv[0], "Args": list(c.config.argv[1:]),
        "State": {"Status": st.status, "Running": st.status in ("running", "paused"),
                  "Paused": st.status == "paused", "OOMKilled": st.oom_killed, "Pid": st.pid,
                  "ExitCode": st.exit_code, "Error": st.error, "StartedAt": st.started_at,
                  "FinishedAt": st.finished_at},
        "Config": asdict(c.config), "Ports": list(st.ports), "Cgroups": list(st.cgroups),
    }


def inspect(ctx: typer.Context, refs: List[str] = typer.Argument(...)) -> None:
    """Docker-like JSON of containers (State.ExitCode, State.OOMKilled, ...)."""
    from runtime.containers import lifecycle

    records = _records(ctx)
    out = [container_json(lifecycle.find(records, ref)) for ref in refs]
    typer.echo(json.dumps(out, indent=4))


def prune(ctx: typer.Context, force: bool = typer.Option(False, "-f", "--force")) -> None:
    """Remove every stopped container."""
    from runtime.containers import lifecycle

    records = _records(ctx)
    for c in lifecycle.all_containers(records):
        if not lifecycle.is_running(c):
            lifecycle.remove(records, c)
            typer.echo(c.id)


def export(ctx: typer.Context, ref: str = typer.Argument(...),
           output: str = typer.Option(..., "-o", "--output", help="The tar file to write.")) -> None:
    """Write a container's filesystem as a tar."""
    from runtime.containers.files import export_rootfs

    from runtime.containers import lifecycle

    records = _records(ctx)
    export_rootfs(records, lifecycle.find(records, ref), output)


def cp(ctx: typer.Context, src: str = typer.Argument(..., help="CTR:PATH or a host path."),
       dest: str = typer.Argument(..., help="CTR:PATH or a host path.")) -> None:
    """Copy files between a container and the host (paths resolved inside the container's root)."""
    from grammar.errors import UsageError
    from runtime.containers import lifecycle
    from runtime.containers.files import copy_from, copy_to

    records = _records(ctx)
    if ":" in src and not src.startswith(("/", ".")):
        ref, path = src.split(":", 1)
        copy_from(records, lifecycle.find(records, ref), path, dest)
    elif ":" in dest and not dest.startswith(("/", ".")):
        ref, path = dest.split(":", 1)
        copy_to(records, lifecycle.find(records, ref), src, path)
    else:
        raise UsageError("cp: one side must be CONTAINER:PATH")


def register(app: typer.Typer) -> None:
    for fn, name in ((ps, "ps"), (stop, "stop"), (kill, "kill"), (start, "start"), (restart, "restart"),
                     (rm, "rm"), (pause, "pause"), (unpause, "unpause"), (wait, "wait"), (logs, "logs"),
                     (top, "top"), (stats, "stats"), (export, "export"), (cp, "cp")):
        app.command(name)(fn)
        container_app.command(name)(fn)
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_)
    container_app.command("exec", context_settings={"allow_interspersed_args": False})(exec_)
    container_app.command("ls")(ps)
    container_app.command("inspect")(inspect)
    container_app.command("prune")(prune)
    app.add_typer(container_app, name="container")
