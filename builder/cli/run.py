"""`pybuild run`: Docker's run flags, over runtime/containers (the monitor owns the container)."""
from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from typing import List, Optional

import typer

from ._runflags import parse_cpus, parse_memory, parse_volume, read_env_file  # docker's rules for flag values

# Signals that an attached `run` passes on to the container, as docker's --sig-proxy does.
PROXIED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def merge_env(image_env: list[str], assignments: list[str]) -> tuple[tuple[str, str], ...]:
    """Image Env, then --env-file and -e in order; `-e NAME` takes NAME from this environment."""
    env: dict[str, str] = {}
    for item in [*image_env, *assignments]:
        key, eq, value = item.partition("=")
        if not eq:
            if key not in os.environ:
                continue
            value = os.environ[key]
        env[key] = value
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return tuple(env.items())


def parse_security_opts(opts: list[str]) -> str | None:
    """--security-opt as docker's: seccomp=unconfined|PROFILE.json (the file is read and checked
    now; its text goes into the container's record). no-new-privileges is what pybuild always
    does, apparmor=unconfined and label=disable what it already is (it applies neither)."""
    from grammar.errors import UsageError
    from runtime import seccomp

    profile = None
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq and key != "no-new-privileges":
            key, eq, value = opt.partition(":")  # docker still takes the old "seccomp:FILE"
        if key == "no-new-privileges" and value in ("", "true"):
            continue
        if not value:
            raise UsageError(f"invalid --security-opt: {opt!r}", hint="use seccomp=unconfined or seccomp=PROFILE.json")
        if key == "seccomp":
            profile = seccomp.read_option(value)
        elif (key, value) not in (("apparmor", "unconfined"), ("label", "disable")):
            raise UsageError(f"--security-opt {opt}: not supported by pybuild",
                             hint="pybuild applies seccomp=... and always no-new-privileges; no AppArmor or SELinux")
    return profile


def command_line(image_cfg: dict, entrypoint: str | None, cmd: list[str]) -> tuple[str, ...]:
    from grammar.errors import UsageError

    if entrypoint is not None:
        ep = [entrypoint] if entrypoint else []
        args = cmd  # --entrypoint resets the image's CMD, as docker does
    else:
        ep = list(image_cfg.get("Entrypoint") or [])
        args = cmd or list(image_cfg.get("Cmd") or [])
    argv = tuple(ep + args)
    if not argv:
        raise UsageError("no command given and the image has neither ENTRYPOINT nor CMD",
                         hint="add a command after the image name")
    return argv


def run(
    ctx: typer.Context,
    image: str = typer.Argument(..., help="Image (tag, ID or digest)."),
    command: Optional[List[str]] = typer.Argument(None, help="Command and arguments (default: the image's)."),
    rm: bool = typer.Option(False, "--rm", help="Remove the container when it exits."),
    detach: bool = typer.Option(False, "-d", "--detach", help="Run in the background; print the id."),
    name: Optional[str] = typer.Option(None, "--name"),
    env: List[str] = typer.Option([], "-e", "--env", help="K=V, or K to take it from here."),
    env_file: List[str] = typer.Option([], "--env-file"),
    workdir: Optional[str] = typer.Option(None, "-w", "--workdir"),
    user: Optional[str] = typer.Option(None, "-u", "--user"),
    volume: List[str] = typer.Option([], "-v", "--volume", help="/HOST:/CTR[:OPTS], OPTS as docker's: ro|rw, "
                                     "z|Z (accepted; no SELinux labels here), private|rprivate, cached|delegated|consistent."),
    tmpfs: List[str] = typer.Option([], "--tmpfs"),
    publish: List[str] = typer.Option([], "-p", "--publish", help="IP:HOST:CTR/PROTO (IP and /tcp or /udp optional)"),
    network: str = typer.Option("private", "--network", "--net", help="private | none | host"),
    hostname: Optional[str] = typer.Option(None, "--hostname", "-h"),
    init: bool = typer.Option(False, "--init", help="Run our tini-like init as PID 1."),
    memory: Optional[str] = typer.Option(None, "-m", "--memory"),
    cpus: Optional[str] = typer.Option(None, "--cpus", help="CPUs worth of quota (0: no limit)."),
    pids_limit: Optional[int] = typer.Option(None, "--pids-limit"),
    entrypoint: Optional[str] = typer.Option(None, "--entrypoint"),
    interactive: bool = typer.Option(False, "-i", "--interactive"),
    tty: bool = typer.Option(False, "-t", "--tty"),
    stop_signal: Optional[str] = typer.Option(None, "--stop-signal"),
    stop_timeout: int = typer.Option(10, "--stop-timeout"),
    read_only: bool = typer.Option(False, "--read-only"),
    cap_add: List[str] = typer.Option([], "--cap-add"),
    cap_drop: List[str] = typer.Option([], "--cap-drop"),
    privileged: bool = typer.Option(False, "--privileged"),
    security_opt: List[str] = typer.Option([], "--security-opt", help="seccomp=unconfined|PROFILE.json, as docker's"),
    cgroup_parent: Optional[str] = typer.Option(None, "--cgroup-parent"),
    explain: bool = typer.Option(False, "--explain", help="Print each kernel step, as the commands you would type for it."),
) -> None:
    """Run a command in a new container."""
    from grammar.errors import UsageError
    from runtime.containers.prefork import Prefork

    with _exit_125():  # docker's code when `run` fails before the container's process starts
        if network not in ("private", "none", "host", "bridge"):
            raise UsageError(f"--network {network!r}: use private, none or host")
        network = "private" if network == "bridge" else network
        if publish and network != "private":
            raise UsageError(f"-p needs the container's own network (--network private), not {network}")
        if publish:  # (socket and the proxy are imported only when a port is published)
            from runtime.portproxy import parse_publish

            for p in publish:
                parse_publish(p)
        volumes = tuple(parse_volume(v) for v in volume)  # canonical HOST:CTR:ro|rw
        memory_bytes = parse_memory(memory) if memory is not None else None
        cpu_quota = parse_cpus(cpus) if cpus is not None else None
        prefork = Prefork()  # the monitor loads its modules while this process prepares the container
        try:
            from runtime.containers.lifecycle import parse_signal
            from runtime.containers.records import Records, RunConfig

            from ._store import open_store

            store = open_store(ctx)
            img = store.resolve(image)
            icfg = img.config_section or {}
            assignments = [a for f in env_file for a in read_env_file(f)] + list(env)
            stop_sig = stop_signal or icfg.get("StopSignal") or "SIGTERM"
            parse_signal(stop_sig)
            config = RunConfig(
                image=image, image_id=img.id, diff_ids=tuple(img.diff_ids),
                argv=command_line(icfg, entrypoint, list(command or [])),
                env=merge_env(list(icfg.get("Env") or []), assignments),
                user=user if user is not None else icfg.get("User", ""),
                workdir=workdir or icfg.get("WorkingDir") or "/", hostname=hostname or "", network=network,
                publish=tuple(publish), volumes=volumes, tmpfs=tuple(tmpfs), init=init, tty=tty,
                interactive=interactive, memory=memory_bytes, cpus=cpu_quota,
                pids_limit=pids_limit, stop_signal=stop_sig, stop_timeout=stop_timeout, read_only=read_only,
                cap_add=tuple(cap_add), cap_drop=tuple(cap_drop), privileged=privileged,
                seccomp=parse_security_opts(list(security_opt)), auto_remove=rm,
                cgroup_parent=cgroup_parent, explain=explain)
            records = Records(store.root)
            with store.lock("containers"):
                c = records.create(config, name)
        except BaseException:
            prefork.cancel()
            raise
        code = start_and_attach(records, c.id, attached=not detach, interactive=interactive, tty=tty, prefork=prefork)
    if detach:
        typer.echo(c.id)
        return
    if sys.stdout is sys.__stdout__:  # the real CLI process (not typer's CliRunner in a test)
        # The container is gone and every record written: skip the interpreter's teardown of
        # the ~200 modules loaded (~13 ms of every `run --rm`).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)


@contextmanager
def _exit_125():
    """An error of pybuild's own (bad flag value, unknown image, name in use, unknown user, no command)
    makes `run` exit 125, as docker's does; once the process runs, its own code is the exit code."""
    from grammar.errors import PybuildError

    try:
        yield
    except PybuildError as err:
        err.exit_code = 125
        raise


def start_and_attach(records, cid: str, *, attached: bool, interactive: bool, tty: bool, prefork=None) -> int:
    """Launch the monitor; attached, relay until the container exits and return its code."""
    from runtime.containers import monitor
    from runtime.containers.lifecycle import find, remove_files
    from runtime.containers.prefork import Prefork

    attach = None
    if attached:
        sys.stdout.flush()
        attach = monitor.Attach(0 if interactive else None, 1, 2)
    # Signals are caught from before the launch: one that arrives while the container starts (its
    # first output may come before launch returns) is held, then forwarded, never lost and never
    # the death of this CLI while the monitor runs the container.
    target: list[int] = []
    pending: list[int] = []

    def forward(sig: int, _frame=None) -> None:
        (_forward(target[0], sig) if target else pending.append(sig))

    previous = {}
    if attached and not tty:  # with a pty, Ctrl-C is a byte the container's terminal turns into SIGINT
        for sig in PROXIED:
            previous[sig] = signal.signal(sig, forward)
    try:
        try:
            started = (prefork or Prefork()).launch(records.dir.rsplit("/", 1)[0], cid, attach)
        except monitor.ContainerStartError:
            if records.load(cid).config.auto_remove:
                remove_files(records, cid)  # the monitor ended without running it: nothing runs
            raise
        if not attached:
            os.close(started.done_fd)
            return 0
        target.append(started.pid)
        for sig in pending:
            _forward(started.pid, sig)
        restore = _raw_terminal() if tty and os.isatty(0) else None
        if tty:
            previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, lambda *_: _resize(started.pid))
        try:
            with os.fdopen(started.done_fd, "rb") as f:
                text = _read_all(f)
        finally:
            if restore:
                restore()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if text.strip().isdigit():
        return int(text)
    return find(records, cid).state.exit_code or 0 if os.path.isdir(records.path(cid)) else 125


def _read_all(f) -> str:
    while True:
        try:
            return f.read().decode()
        except InterruptedError:
            continue


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _resize(pid: int) -> None:
    """The window size follows: set it on the container's terminal (its PID 1's stdin)."""
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fd = os.open(f"/proc/{pid}/fd/0", os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.ioctl(fd, termios.TIOCSWINSZ, size)
        finally:
            os.close(fd)
    except OSError:
        pass


def _raw_terminal():
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)
    return lambda: termios.tcsetattr(0, termios.TCSADRAIN, saved)


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(run)
