"""Chaos, concurrency and a full disk (issue 12, item 8), through the real CLI on a scratch store.

1. kill -9 at a random moment of `build` (RUN and COPY steps on the busybox base), `pull`, `push`,
   `load`, and of a detached container's monitor: 5 x PYBUILD_CHAOS_KILLS (20) kills, seeded. The
   seed is printed (and named in every failure); `PYBUILD_CHAOS_SEED=N` replays the same moments.
   After each kill: `system check` is clean, the next identical command succeeds, nothing was
   written outside the store, and once a user has cleaned up (`ps -a`, `rm -f`, `system prune -f`)
   no mount, cgroup, network namespace/device or process of pybuild is left.
2. 4 concurrent builds of different Dockerfiles sharing layers, beside a `system prune -f` loop.
3. 20 concurrent `run --rm IMG sh -c 'echo $$'` on one store.
4. The store on a small tmpfs, filled: build, pull and load fail with one clear line naming the
   store; once space is freed, the store checks clean and the same command works.

(tests/cache/test_cache_crash_concurrency.py kills the store's own API; this kills the commands.)
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "registry"))
from reghelpers import _long_lived  # noqa: E402
from regservers import start_registry  # noqa: E402

sys.path.pop(0)

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups]

SEED = int(os.environ.get("PYBUILD_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
KILLS = int(os.environ.get("PYBUILD_CHAOS_KILLS", "20"))   # per kind; 5 kinds -> >= 100 kills
CLI = [sys.executable, "-m", "builder.cli"]
BASE = "chaos-base:1"

DOCKERFILE = """FROM chaos-base:1
COPY a.txt /a.txt
RUN echo built > /built && cat /a.txt && i=0 && while [ $i -lt 100 ]; do echo $i > /tmp/f$i; i=$((i+1)); done
COPY big.bin /big.bin
RUN sh -c 'cat /big.bin > /big.copy; sleep 0.1; echo done'
"""


# --- what the machine holds of pybuild's: mounts, cgroups, links, netns, processes ---------------

def _mounts(root: str) -> set[str]:
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    return {" ".join(line.split()[4:5]) + " " + line.split(" - ")[-1].split()[0] for line in lines
            if root in line or " - overlay " in line}


def _cgroups() -> set[str]:
    found = set()
    for top in Path("/sys/fs/cgroup").iterdir():
        for dirpath, _dirs, _files in os.walk(top / "pybuild"):
            if dirpath != str(top / "pybuild"):
                found.add(dirpath)
    return found


def _processes(root: str) -> set[str]:
    """Live (not zombie) processes that are pybuild's: in a pybuild cgroup, naming the store, or a
    network helper."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{entry}/cgroup") as f:
                cgroup = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        if state in ("Z", "X"):
            continue
        if "/pybuild/" in cgroup or root in cmdline or cmdline.split(" ")[0].endswith(("slirp4netns", "pasta")):
            found.add(f"{entry} {cmdline[:120]}")
    return found


def _machine(root: str) -> dict[str, set[str]]:
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    return {"mounts": _mounts(root), "cgroups": _cgroups(), "links": set(os.listdir("/sys/class/net")),
            "netns": netns, "processes": _processes(root)}


def _tree(path: Path) -> set[str]:
    out = set()
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out.add(f"{os.path.relpath(p, path)} {st.st_size} {st.st_mtime_ns}")
    return out


class Bench:
    """One scratch store and the places around it that pybuild must not write to."""

    def __init__(self, tmp_path: Path, busybox_tar: str, root: Path | None = None):
        self.tmp = tmp_path
        self.root = str(root or tmp_path / "store")
        self.cwd = tmp_path / "cwd"          # the CLI's working directory: stays empty
        self.tmpdir = tmp_path / "tmpdir"    # its TMPDIR: stays empty
        self.ctx = tmp_path / "ctx"          # the build context: never written to
        for d in (self.cwd, self.tmpdir, self.ctx):
            d.mkdir(exist_ok=True)
        (self.ctx / "a.txt").write_text("hello\n")
        (self.ctx / "big.bin").write_bytes(random.Random(7).randbytes(1 << 20))
        (self.ctx / "Dockerfile").write_text(DOCKERFILE)
        self.env = {**os.environ, "TMPDIR": str(self.tmpdir)}
        self.pb("import", busybox_tar, BASE, check=True)
        self.world0 = self.world()

    def argv(self, *args: str) -> list[str]:
        return [*CLI, "--root", self.root, *args]

    def pb(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
        out = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout,
                             cwd=self.cwd, env=self.env)
        if check and out.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.cwd, env=self.env, start_new_session=True)

    def world(self) -> dict[str, set[str]]:
        """What lies outside the store: the test dir's top level, cwd, TMPDIR, context, /dev/shm."""
        return {"test dir": set(os.listdir(self.tmp)), "cwd": _tree(self.cwd), "TMPDIR": _tree(self.tmpdir),
                "context": _tree(self.ctx), "/dev/shm": set(os.listdir("/dev/shm"))}

    def clean_up(self) -> list[str]:
        """As a user would: ps -a, rm -f what is listed, system prune -f. Returns what went wrong."""
        problems = []
        ps = self.pb("ps", "-a", "-q", timeout=60)
        if ps.returncode != 0:
            problems.append(f"ps -a: {ps.stderr.strip()}")
        ids = ps.stdout.split()
        if ids:
            rm = self.pb("rm", "-f", *ids, timeout=60)
            if rm.returncode != 0:
                problems.append(f"rm -f: {rm.stderr.strip()}")
        prune = self.pb("system", "prune", "-f", timeout=60)
        if prune.returncode != 0:
            problems.append(f"system prune -f: {prune.stderr.strip()}")
        return problems

    def leaks(self, machine0: dict[str, set[str]], wait_s: float = 10) -> list[str]:
        """New mounts, cgroups, links, netns, processes (given wait_s to go), or files outside."""
        deadline = time.monotonic() + wait_s
        while True:
            now = _machine(self.root)
            new = {k: sorted(now[k] - machine0[k]) for k in now}
            problems = [f"{k} left: {v}" for k, v in new.items() if v]
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        world = self.world()
        for k in world:
            if world[k] != self.world0[k]:
                problems.append(f"written outside the store ({k}): {sorted(world[k] ^ self.world0[k])[:5]}")
        return problems

    def check(self) -> list[str]:
        out = self.pb("system", "check", timeout=120)
        return [] if out.returncode == 0 else [f"system check: {out.stderr.strip() or out.stdout.strip()}"]


@pytest.fixture
def bench(tmp_path, busybox_tar) -> Bench:
    return Bench(tmp_path, busybox_tar)


@pytest.fixture(scope="module")
def chaos_registry(request, tmp_path_factory):
    """Debian's docker-registry on 127.0.0.1 (as tests/registry starts it), for pull and push."""
    if not os.path.exists("/usr/bin/docker-registry"):
        pytest.skip("docker-registry is not installed (scripts/setup installs it)")
    reg = start_registry(str(tmp_path_factory.mktemp("chaos-registry")))
    _long_lived(request, reg.proc.pid)
    yield reg
    reg.stop()


# --- 1. chaos kills ------------------------------------------------------------------------------

class Kind:
    """One command under chaos: setup once, prepare before each kill, the command itself."""

    def __init__(self, b: Bench, reg):
        self.b, self.reg = b, reg

    def setup(self) -> None: ...

    def prepare(self, i: int) -> None: ...

    def command(self, i: int) -> list[str]: raise NotImplementedError

    def verify(self, i: int, out: subprocess.CompletedProcess) -> list[str]:
        return [] if out.returncode == 0 else [f"the next identical command failed: {out.stderr.strip()[-400:]}"]


class BuildKind(Kind):
    def command(self, i):
        return ["build", "--no-cache", "-q", "-t", "chaos/build:1", str(self.b.ctx)]

    def verify(self, i, out):
        problems = super().verify(i, out)
        if not problems:
            run = self.b.pb("run", "--rm", "--network=none", "chaos/build:1", "cat", "/built", "/tmp/f99")
            if (run.returncode, run.stdout) != (0, "built\n99\n"):
                problems.append(f"the rebuilt image does not run: {run.returncode} {run.stdout!r} {run.stderr}")
        return problems


class PullKind(Kind):
    def setup(self):
        b = self.b
        b.pb("build", "-q", "-t", "chaos/src:1", str(b.ctx), check=True)
        self.ref = f"{self.reg.host}/chaos/pull:1"
        b.pb("push", "-q", "chaos/src:1", self.ref, check=True)
        b.pb("rmi", "chaos/src:1", check=True)

    def prepare(self, i):  # the pulled image and its blobs gone: every pull downloads
        self.b.pb("rmi", self.ref)
        self.b.pb("system", "prune", "-f", check=True)

    def command(self, i):
        return ["pull", "-q", self.ref]


class PushKind(Kind):
    def setup(self):
        self.b.pb("build", "-q", "-t", "chaos/push:1", str(self.b.ctx), check=True)
        self.digest = self.b.pb("push", "-q", "chaos/push:1", f"{self.reg.host}/chaos/push-ref:1",
                                check=True).stdout.strip()

    def command(self, i):  # a new repository each time: every blob is uploaded again
        return ["push", "-q", "chaos/push:1", f"{self.reg.host}/chaos/push{i}:1"]

    def verify(self, i, out):
        problems = super().verify(i, out)
        if not problems and out.stdout.strip() != self.digest:
            problems.append(f"push printed {out.stdout.strip()!r}, not the image's digest {self.digest}")
        return problems


class LoadKind(Kind):
    def setup(self):
        b = self.b
        b.pb("build", "-q", "-t", "chaos/load:1", str(b.ctx), check=True)
        self.archive = b.tmp / "load.tar"
        b.pb("save", "-o", str(self.archive), "chaos/load:1", check=True)
        b.world0 = b.world()

    def prepare(self, i):
        self.b.pb("rmi", "chaos/load:1")
        self.b.pb("system", "prune", "-f", check=True)

    def command(self, i):
        return ["load", "-q", "-i", str(self.archive)]


class MonitorKind(Kind):
    """`run -d`, then kill -9 of the container's monitor (found in its record) at a random moment:
    while it starts the container or while the container runs."""

    def command(self, i):
        return ["run", "-d", "--network=none", BASE, "sh", "-c", "echo up; sleep 60"]

    def verify(self, i, out):
        problems = super().verify(i, out)
        if not problems:
            cid = out.stdout.strip()
            if self.b.pb("rm", "-f", cid).returncode != 0:
                problems.append(f"rm -f of a healthy container {cid[:12]} failed")
        return problems


def _monitor(root: str) -> tuple[int, int] | None:
    """(monitor pid, start time) of the one container in the store, once its monitor is recorded."""
    d = os.path.join(root, "containers")
    for cid in os.listdir(d):
        try:
            with open(os.path.join(d, cid, "state.json")) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        if st.get("monitor_pid"):
            return st["monitor_pid"], st["monitor_start"]
    return None


def _kill_monitor_at(b: Bench, proc: subprocess.Popen, at: float) -> str:
    from runtime.containers.monitor import proc_start_time

    t0 = time.monotonic()
    deadline = t0 + 20
    while time.monotonic() < deadline:
        found = _monitor(b.root) if time.monotonic() - t0 >= at else None
        if found:
            pid, start = found
            try:
                if proc_start_time(pid) == start:
                    os.kill(pid, signal.SIGKILL)
                    return f"monitor {pid} at {time.monotonic() - t0:.2f}s"
            except (OSError, ValueError, IndexError):
                pass
            return "monitor already gone"
        time.sleep(0.005)
    return "no monitor recorded in 20 s"


KINDS = {"build": BuildKind, "pull": PullKind, "push": PushKind, "load": LoadKind, "monitor": MonitorKind}


@pytest.mark.slow
@pytest.mark.parametrize("kind", [
    "build", pytest.param("pull", marks=pytest.mark.registry), pytest.param("push", marks=pytest.mark.registry),
    "load", "monitor"])
def test_kill_9_at_random_moments(kind, bench, chaos_registry, record, capsys):
    with capsys.disabled():
        print(f"\n[chaos {kind}] PYBUILD_CHAOS_SEED={SEED} (set it to replay these moments)")
    rng = random.Random(f"{SEED}/{kind}")
    k = KINDS[kind](bench, chaos_registry)
    k.setup()
    machine0 = _machine(bench.root)
    # How long the command takes here: the kills fall anywhere in it (and a little after).
    k.prepare(-1)
    t = time.monotonic()
    first = bench.pb(*k.command(-1))
    span = time.monotonic() - t
    assert first.returncode == 0, first.stderr
    assert not bench.clean_up()
    for i in range(KILLS):
        k.prepare(i)
        at = rng.uniform(0.0, span * 1.1) if kind != "monitor" else rng.uniform(0.0, 1.0)
        proc = bench.spawn(*k.command(i))
        if kind == "monitor":
            what = _kill_monitor_at(bench, proc, at)
        else:
            time.sleep(at)
            proc.send_signal(signal.SIGKILL)
            what = f"pybuild {kind} at {at:.2f}s"
        problems = []
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            problems.append("the command hung after the kill")
        problems += bench.check()
        if not problems:
            problems += k.verify(i, bench.pb(*k.command(i), timeout=120))
        problems += bench.clean_up()
        problems += bench.check()
        problems += bench.leaks(machine0)
        record(f"chaos: kill -9 {kind} [seed {SEED} #{i}]", not problems)
        assert not problems, f"PYBUILD_CHAOS_SEED={SEED} {kind} #{i} ({what}):\n" + "\n".join(problems)


_NO_REAPER = """
import ctypes, json, os, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, and never wait()
root = sys.argv[1]
pb = lambda *a: subprocess.run([sys.executable, "-m", "builder.cli", "--root", root, *a], capture_output=True, text=True)
cid = pb("run", "-d", "--network=none", sys.argv[2], "sleep", "60").stdout.strip()
with open(os.path.join(root, "containers", cid, "state.json")) as f:
    os.kill(json.load(f)["monitor_pid"], 9)
time.sleep(0.5)
print(pb("ps", "-a").stdout)
pb("rm", "-f", cid)
"""


def test_a_killed_monitor_nobody_reaps_is_dead(bench, record):
    """Where PID 1 (or a subreaper) does not reap, the killed monitor stays a zombie: `ps -a` said
    "Up" for ever (process_alive took the zombie for the monitor); it is exited, as Docker says."""
    out = subprocess.run([sys.executable, "-c", _NO_REAPER, bench.root, BASE], capture_output=True, text=True,
                         timeout=120, cwd=REPO, env=bench.env)
    held = "Exited (137)" in out.stdout and "Up " not in out.stdout
    record("chaos: kill -9 monitor, never reaped", held)
    assert held, out.stdout + out.stderr
    assert not bench.clean_up() and not bench.check()


# --- 2. concurrent builds sharing layers, and prune beside them ----------------------------------

def test_four_builds_sharing_layers_beside_a_prune_loop(bench, record):
    b = bench
    machine0 = _machine(b.root)
    ctxs = []
    for n in range(4):
        ctx = b.tmp / f"ctx{n}"
        ctx.mkdir()
        (ctx / "shared.txt").write_text("shared by all four\n")
        (ctx / "own.txt").write_text(f"own {n}\n")
        (ctx / "Dockerfile").write_text(
            f"FROM {BASE}\nCOPY shared.txt /shared.txt\nRUN echo shared > /s && sleep 0.2\n"
            f"COPY own.txt /own.txt\nRUN echo {n} > /id && cat /shared.txt /own.txt\n"
            + "RUN echo extra > /extra\n" * (n % 2))
        ctxs.append(ctx)
    b.world0 = b.world()
    for round_ in ("cold", "--no-cache"):
        stop, prunes, prune_errors = threading.Event(), [0], []

        def prune_loop():
            while not stop.is_set():
                out = b.pb("system", "prune", "-f")
                prunes[0] += 1
                if out.returncode != 0:
                    prune_errors.append(out.stderr.strip())

        pruner = threading.Thread(target=prune_loop)
        pruner.start()
        extra = ["--no-cache"] if round_ == "--no-cache" else []
        procs = [b.spawn("build", *extra, "-q", "-t", f"par/b{n}:1", str(ctx)) for n, ctx in enumerate(ctxs)]
        outs = [p.communicate(timeout=300) for p in procs]
        stop.set()
        pruner.join()
        problems = [f"build {n}: {err.strip()}" for n, (p, (_, err)) in enumerate(zip(procs, outs)) if p.returncode]
        problems += [f"prune: {e}" for e in prune_errors]
        for n in range(4):
            run = b.pb("run", "--rm", "--network=none", f"par/b{n}:1", "cat", "/s", "/id", "/shared.txt", "/own.txt")
            if (run.returncode, run.stdout) != (0, f"shared\n{n}\nshared by all four\nown {n}\n"):
                problems.append(f"par/b{n}:1 does not run right: {run.returncode} {run.stdout!r} {run.stderr}")
        problems += b.check() + b.clean_up() + b.check() + b.leaks(machine0)
        record("concurrency: 4 builds sharing layers + prune loop", not problems)
        assert not problems, f"{round_} round ({prunes[0]} prunes ran beside):\n" + "\n".join(problems)
        assert prunes[0] >= 2, "the prune loop did not run beside the builds"


# --- 3. twenty runs at once -----------------------------------------------------------------------

def test_twenty_concurrent_runs(bench, record):
    b = bench
    machine0 = _machine(b.root)
    procs = [b.spawn("run", "--rm", "--network=none", BASE, "sh", "-c", "echo $$") for _ in range(20)]
    outs = [p.communicate(timeout=300) for p in procs]
    problems = [f"run {n}: {p.returncode} {out!r} {err.strip()}" for n, (p, (out, err)) in enumerate(zip(procs, outs))
                if (p.returncode, out) != (0, "1\n")]
    left = b.pb("ps", "-a", "-q").stdout.split()
    if left:
        problems.append(f"--rm containers still listed: {left}")
    if os.listdir(os.path.join(b.root, "containers")):
        problems.append(f"container directories left: {os.listdir(os.path.join(b.root, 'containers'))}")
    problems += b.check() + b.leaks(machine0)
    record("concurrency: 20 runs --rm at once", not problems)
    assert not problems, "\n".join(problems)


# --- 4. a full disk -------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 48 MiB tmpfs at tmp_path/disk, unmounted at teardown (before the leak check runs)."""
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0755", "chaos-disk", str(where)], check=True)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)


def _fill(disk: Path) -> Path:
    """Write zeros until the filesystem refuses one more byte."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while f.write(b"\0" * size):
                    pass
            except OSError:
                pass
    return filler


def _no_space_line(out: subprocess.CompletedProcess, root: str) -> list[str]:
    lines = [line for line in out.stderr.splitlines() if "no space left on device" in line.lower()]
    problems = []
    if out.returncode == 0:
        problems.append("exit 0 on a full disk")
    if len(lines) != 1 or root not in lines[0] or "Traceback" in out.stderr:
        problems.append(f"not one clear line naming the store {root}: {out.stderr.strip()[-600:]!r}")
    return problems


@pytest.mark.registry
def test_full_disk(tmp_path, busybox_tar, small_disk, chaos_registry, record):
    # What the commands need, made on the ordinary disk: an archive and a pushed image.
    (tmp_path / "src").mkdir()
    src = Bench(tmp_path / "src", busybox_tar)
    src.pb("build", "-q", "-t", "chaos/full:1", str(src.ctx), check=True)
    archive = tmp_path / "full.tar"
    src.pb("save", "-o", str(archive), "chaos/full:1", check=True)
    remote = f"{chaos_registry.host}/chaos/full:1"
    src.pb("push", "-q", "chaos/full:1", remote, check=True)

    (tmp_path / "b").mkdir()
    b = Bench(tmp_path / "b", busybox_tar, root=small_disk / "store")
    machine0 = _machine(b.root)
    commands = {"build": ["build", "-q", "-t", "chaos/full-build:1", str(b.ctx)],
                "pull": ["pull", "-q", remote],
                "load": ["load", "-q", "-i", str(archive)]}
    for name, argv in commands.items():
        filler = _fill(small_disk)
        out = b.pb(*argv)
        problems = _no_space_line(out, b.root)
        filler.unlink()
        problems += b.check()
        again = b.pb(*argv)
        if again.returncode != 0:
            problems.append(f"{name} after freeing space: {again.stderr.strip()[-400:]}")
        problems += b.clean_up() + b.check() + b.leaks(machine0)
        record(f"full disk: {name}", not problems)
        assert not problems, f"{name}:\n" + "\n".join(problems)
    run = b.pb("run", "--rm", "--network=none", "chaos/full-build:1", "cat", "/built")
    assert (run.returncode, run.stdout) == (0, "built\n"), run.stderr
