"""Escape attempts of a hostile image (issue 12, item 8), each made from the three places pybuild
starts a process in a container: `pybuild run`, `pybuild exec` into a running container, and a
build's RUN step. Every attempt must be refused AND leave the host as it was (hostname, core_pattern,
a sysfs knob, the host's keyring, a host process, the host disk's first block); the leak fixture
(tests/conftest.py) checks mounts, cgroups, links and processes after each.

An attack is a shell script run in the attacker image (the busybox base + /probe, probes/probe.c
built static once per session). Each step of it prints one line: `REFUSED <step> ...` where the
kernel said no, `ESCAPED <what>` where it worked. Held = at least one REFUSED and no ESCAPED (an
attack that could not even start is not counted as held). Docker 20.10's answers on the same host
are in the module's report (README, Security)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups]

HERE = Path(__file__).resolve().parent
ATTACKER = "hostile-attacker:latest"
MODES = ("run", "exec", "build")


# --- the attacker image, the places it runs, and the host's state ------------------------------

@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory) -> Path:
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the probe (tests/hostile/probes/probe.c)")
    out = tmp_path_factory.mktemp("probe") / "probe"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(HERE / "probes" / "probe.c")],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def attacker(hostile_store, probe_binary) -> str:
    """hostile-base + /probe, one more layer."""
    from cache.archive import store_layer_stream
    from cache.store import Store

    store = Store.open(hostile_store)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tar.gettarinfo(str(probe_binary), arcname="probe")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        with open(probe_binary, "rb") as f:
            tar.addfile(info, f)
    buf.seek(0)
    layer = store_layer_stream(store, buf, "none")
    img = store.commit(store.resolve("hostile-base:latest").with_layer(layer, {"created_by": "hostile probe"}))
    store.tag(ATTACKER, img)
    return ATTACKER


@pytest.fixture(scope="module", params=MODES)
def mode(request, attacker, hostile_store):
    """Module-scoped (so the exec target exists before the leak fixture looks): the name of the
    mode, and for exec the running container to exec into."""
    if request.param != "exec":
        yield request.param, None
        return
    name = f"hostile-exec-{os.getpid()}"
    argv = [sys.executable, "-m", "builder.cli", "--root", hostile_store]
    subprocess.run([*argv, "run", "-d", "--name", name, attacker, "sleep", "100000"],
                   check=True, capture_output=True, cwd=HERE.parents[1])
    try:
        yield "exec", name
    finally:
        subprocess.run([*argv, "rm", "-f", name], capture_output=True, cwd=HERE.parents[1])


def attempt(pb, mode, script: str, tmp_path: Path, run_flags: tuple[str, ...] = (),
            container: str | None = None, timeout: float = 120, marker: str = "sh") -> str:
    """Run `script` with sh in the attacker from `mode`; returns everything it printed."""
    kind, target = mode
    if kind == "run":
        out = pb("run", "--rm", *run_flags, ATTACKER, "sh", "-c", script, marker, timeout=timeout)
    elif kind == "exec":
        out = pb("exec", container or target, "sh", "-c", script, marker, timeout=timeout)
    else:
        ctx = tmp_path / "ctx"
        ctx.mkdir(exist_ok=True)
        # a heredoc keeps the script as it is; `true` at the end: the verdict is in the output
        (ctx / "Dockerfile").write_text(f"FROM {ATTACKER}\nRUN <<'EOF'\n{script}\ntrue\nEOF\n")
        out = pb("build", "--no-cache", "--pull", "never", "--progress", "plain", str(ctx), timeout=timeout)
        assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def verdict(output: str) -> bool:
    """Held: something was refused and nothing escaped."""
    lines = output.splitlines()
    return any("REFUSED" in l for l in lines) and not any("ESCAPED" in l for l in lines)


def host_disk() -> str:
    """The block device of the host's root filesystem (os.stat('/').st_dev), or of the first
    /dev/ source in the mount table when / is not on a block device (overlay, tmpfs)."""
    dev = os.stat("/").st_dev
    if os.major(dev):
        return f"{os.major(dev)} {os.minor(dev)}"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            source = line.split(" - ")[1].split()[1]
            if source.startswith("/dev/") and os.path.exists(source):
                st = os.stat(source)
                if os.major(st.st_rdev):
                    return f"{os.major(st.st_rdev)} {os.minor(st.st_rdev)}"
    pytest.skip("no block device under the host's filesystems")


SYS_KNOB = "/sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def host_state() -> dict:
    """What an escape from these attacks would change on the host."""
    dev = host_disk().split()
    disk = f"/sys/dev/block/{dev[0]}:{dev[1]}"
    first = None
    node = f"/dev/block/{dev[0]}:{dev[1]}"
    if os.path.exists(node):
        with open(node, "rb") as f:
            first = hashlib.sha256(f.read(4096)).hexdigest()
    return {
        "hostname": socket.gethostname(),
        "core_pattern": _read("/proc/sys/kernel/core_pattern"),
        "sys_knob": _read(SYS_KNOB),
        "read_ahead": _read(f"{disk}/queue/read_ahead_kb"),
        "keys": "pybuild-hostile" in (_read("/proc/keys") or ""),
        "disk": first,
    }


# --- the attacks: (name, shell script); {disk} and {pid} filled in at test time ------------------

R = "echo REFUSED"   # after `||`: the step failed
ATTACKS = {
    "mount proc, then write its /sys/kernel/hostname":
        f"mkdir -p /x; if mount -t proc proc /x 2>&1; then echo ESCAPED mounted proc;"
        f" echo evil > /x/sys/kernel/hostname && echo ESCAPED wrote hostname; else {R} mount proc; fi",
    "mount sysfs, then write a knob":
        f"mkdir -p /y; if mount -t sysfs sysfs /y 2>&1; then echo ESCAPED mounted sysfs;"
        f" cat /y/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan > /y/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan"
        f" && echo ESCAPED wrote sysfs; else {R} mount sysfs; fi",
    "mount cgroup v1, set release_agent (CVE-2022-0492)":
        f"mkdir -p /z; if mount -t cgroup -o pids cgroup /z 2>&1; then echo ESCAPED mounted cgroup;"
        f" cat /z/release_agent > /z/release_agent && echo ESCAPED wrote release_agent; else {R} mount cgroup; fi",
    # writes write back the value read: if the write went through, the host still holds its value
    "write /proc/sys (core_pattern, hostname)":
        f"v=$(cat /proc/sys/kernel/core_pattern); echo \"$v\" > /proc/sys/kernel/core_pattern"
        f" && echo ESCAPED core_pattern || {R} core_pattern;"
        f" echo evil > /proc/sys/kernel/hostname && echo ESCAPED hostname || {R} proc hostname",
    "write /sys (a mm knob, the disk's read_ahead_kb)":
        f"f={SYS_KNOB}; v=$(cat $f); echo \"$v\" > $f && echo ESCAPED $f || {R} $f;"
        " set -- {disk}; f=/sys/dev/block/$1:$2/queue/read_ahead_kb; v=$(cat $f);"
        f" echo \"$v\" > $f && echo ESCAPED $f || {R} $f;"
        # a new cgroup in a hierarchy (docker: /sys/fs/cgroup is the container's own tmpfs, with
        # read-only hierarchies in it; pybuild mounts none, so the glob stays a missing path)
        f" for d in /sys/fs/cgroup/*/; do mkdir $d/hostile 2>&1 && echo ESCAPED cgroup mkdir $d || {R} cgroup mkdir $d; done",
    "mknod the host's disk, open and read it":
        "/probe blockdev {disk};"
        f" set -- {{disk}}; mknod /tmp/d b $1 $2 2>&1; head -c 512 /tmp/d 2>&1 | wc -c | grep -qx 512"
        f" && echo ESCAPED read disk || {R} busybox read; rm -f /tmp/d",
    "unshare -U, then mount":
        f"/probe userns-mount; unshare -U -r -m sh -c 'mount -t tmpfs t /mnt && echo ESCAPED tmpfs' 2>&1 || {R} unshare",
    "kill / ptrace / /proc of a host pid":
        "/probe kill {pid}; /probe ptrace {pid};"
        f" grep -q hostile-marker /proc/{{pid}}/cmdline 2>/dev/null && echo ESCAPED sees host pid || {R} proc pid;"
        f" kill -9 {{pid}} 2>&1 && echo ESCAPED busybox kill || {R} busybox kill",
    "keyctl / add_key":
        "/probe keyctl",
    "sethostname":
        f"/probe sethostname hostile-evil; hostname hostile-evil2 2>&1 && echo ESCAPED hostname || {R} hostname",
    "open_by_handle_at (shocker)":
        "/probe shocker",
    "read /proc/kcore":
        f"n=$(head -c 64 /proc/kcore 2>/dev/null | wc -c); [ \"$n\" -gt 0 ] && echo ESCAPED kcore $n bytes || {R} kcore",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_escape_is_refused_and_the_host_unchanged(pb, mode, attack, record, tmp_path):
    if attack == "read /proc/kcore" and not os.path.exists("/proc/kcore"):
        pytest.skip("this kernel has no /proc/kcore")
    # a host process the container must neither see nor signal; its argv marks it as ours
    host = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "hostile-marker"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        before = host_state()
        script = ATTACKS[attack].replace("{disk}", host_disk()).replace("{pid}", str(host.pid))
        output = attempt(pb, mode, script, tmp_path)
        after = host_state()
        alive = host.poll() is None
    finally:
        host.kill()
        host.wait()
    held = verdict(output) and after == before and alive
    record(f"{attack} [{mode[0]}]", held)
    assert verdict(output), output
    assert after == before, (before, after)
    assert alive, "the host's sleep was killed"


# --- resource bombs: the container is limited, the host answers, nothing stays after ------------

# each level keeps its process (sleep) so the cgroup stays full while the host looks
BOMB = "f() { f | f & sleep 3; }; f 2>/dev/null; sleep 4; echo done"
HOG = "tail -n1 /dev/zero; echo status=$?"


def _pids_cgroup(marker: str) -> Path | None:
    """The pids cgroup directory of the container process whose argv holds `marker` (the CLI that
    started it holds it too, but sits in no pybuild cgroup)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if marker.encode() not in Path(f"/proc/{entry}/cmdline").read_bytes():
                continue
            for line in Path(f"/proc/{entry}/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                if "/pybuild/" not in path + "/":
                    continue
                if "pids" in controllers.split(","):
                    return Path("/sys/fs/cgroup/pids" + path)
                if controllers == "" and Path(f"/sys/fs/cgroup{path}/pids.current").exists():
                    return Path("/sys/fs/cgroup" + path)
        except (OSError, ValueError):
            continue
    return None


def _watch(during, marker: str | None = None) -> tuple[float, int, str, str]:
    """Run `during` in a thread; meanwhile time how long the host takes to spawn `true` and read
    the peak pids.current of the container's cgroup (found by `marker`). Returns (worst spawn
    seconds, peak pids, "pids.max/times the limit refused a fork", what `during` returned)."""
    import threading

    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("out", during()))
    t.start()
    worst, peak, limit = 0.0, 0, ""
    while t.is_alive():
        start = time.monotonic()
        subprocess.run(["true"])
        worst = max(worst, time.monotonic() - start)
        group = _pids_cgroup(marker) if marker else None
        try:
            if group:
                peak = max(peak, int((group / "pids.current").read_text()))
                events = (group / "pids.events").read_text().split()
                limit = (group / "pids.max").read_text().strip() + "/" + events[events.index("max") + 1]
        except OSError:
            pass
        time.sleep(0.1)
    t.join()
    return worst, peak, limit, result.get("out", "")


def _watch_simple(during) -> tuple[float, str]:
    worst, _, _, out = _watch(during)
    return worst, out


def _limited_container(pb, name: str, *flags: str) -> None:
    pb("run", "-d", "--name", name, *flags, ATTACKER, "sleep", "100000", check=True)


@pytest.mark.slow
def test_fork_bomb_under_pids_limit(pb, mode, record, tmp_path):
    kind, _ = mode
    if kind == "build":
        # a build has no --pids-limit (nor has BuildKit's RUN): what a step must not do is outlive
        # itself. 200 children left behind must all die with the step and its cgroup.
        script = "for i in $(seq 200); do sleep 1000 & done; echo forked"
        worst, _, _, output = _watch(lambda: attempt(pb, mode, script, tmp_path, timeout=60))
        left = subprocess.run(["pgrep", "-x", "-f", "sleep 1000"], capture_output=True, text=True).stdout.split()
        held = "forked" in output and not left and worst < 2
        record("fork bomb (200 orphans outliving RUN) [build]", held)
        assert "forked" in output and not left, (output, left)
        assert worst < 2, worst
        return
    name = f"hostile-bomb-{os.getpid()}"
    marker = f"hostile-bomb-{os.urandom(4).hex()}"
    try:
        if kind == "run":
            run = lambda: attempt(pb, mode, BOMB, tmp_path, run_flags=("--pids-limit", "64"), timeout=60, marker=marker)
        else:
            _limited_container(pb, name, "--pids-limit", "64")
            run = lambda: attempt(pb, mode, BOMB, tmp_path, container=name, timeout=60, marker=marker)
        worst, peak, limit, output = _watch(run, marker)
    finally:
        pb("rm", "-f", name)
    # the bomb was real (the limit refused forks) and never went past it
    refused = limit.split("/")[-1]
    held = limit.startswith("64/") and refused.isdigit() and int(refused) > 0 and peak <= 64 and worst < 2
    record(f"fork bomb under --pids-limit 64 [{kind}]", held)
    assert limit.startswith("64/") and int(refused) > 0 and peak <= 64, (limit, peak, output)
    assert worst < 2, f"the host took {worst:.2f}s to start `true` during the bomb"


@pytest.mark.slow
def test_memory_hog_under_memory_limit(pb, mode, record, tmp_path):
    kind, _ = mode
    if kind == "build":
        # no --memory for a build either: a hog left running in the background must die with the
        # step. It is bounded (1 GiB) so that a failure here cannot take the host's memory.
        script = "head -c 1073741824 /dev/zero | tail -n1 >/dev/null & sleep 0.5; echo hogging"
        worst, output = _watch_simple(lambda: attempt(pb, mode, script, tmp_path, timeout=60))
        time.sleep(0.2)
        left = subprocess.run(["pgrep", "-f", "head -c 1073741824"], capture_output=True, text=True).stdout.split()
        held = "hogging" in output and not left and worst < 2
        record("memory hog (background, outliving RUN) [build]", held)
        assert "hogging" in output and not left, (output, left)
        assert worst < 2, worst
        return
    name = f"hostile-hog-{os.getpid()}"
    try:
        if kind == "run":
            worst, out = _watch_simple(lambda: pb("run", "--name", name, "--memory", "64m", ATTACKER,
                                                  "sh", "-c", "exec tail -n1 /dev/zero", timeout=60))
            state = json.loads(pb("container", "inspect", name, check=True).stdout)[0]["State"]
            inspect = f"OOMKilled={state['OOMKilled']} ExitCode={state['ExitCode']}"
        else:
            _limited_container(pb, name, "--memory", "64m")
            worst, output = _watch_simple(lambda: attempt(pb, mode, HOG, tmp_path, container=name, timeout=60))
            out = None
            inspect = output
    finally:
        pb("rm", "-f", name)
    if kind == "run":
        killed = out.returncode == 137 and "OOMKilled=True" in inspect
        detail = f"{out.returncode} {inspect} {out.stderr}"
    else:
        killed = "status=137" in inspect or "Killed" in inspect
        detail = inspect
    held = killed and worst < 2
    record(f"memory hog under --memory 64m [{kind}]", held)
    assert killed, detail
    assert worst < 2, worst
