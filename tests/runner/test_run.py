"""`pybuild run` and the lifecycle end to end, on real namespaces, overlayfs and cgroups.
Every test removes its containers; the leak check (conftest) then finds nothing left."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def inspect(pb, name: str) -> dict:
    return json.loads(pb("container", "inspect", name, check=True).stdout)[0]


def logs(pb, name: str) -> str:
    return pb("logs", name, check=True).stdout


@pytest.mark.parametrize("argv, code, out", [
    (["sh", "-c", "echo hello; exit 3"], 3, "hello\n"),
    (["sh", "-c", "echo $$"], 0, "1\n"),                         # the command is PID 1
    (["sh", "-c", "kill -9 $$; echo alive"], 0, "alive\n"),     # PID 1 ignores even SIGKILL from inside
    (["sh", "-c", "kill -TERM $$; echo alive"], 0, "alive\n"),
    (["no-such-command"], 127, ""),
])
def test_attached_run_streams_output_and_exits_with_the_code(pb, argv, code, out):
    res = pb("run", "--rm", "runner-test", *argv)
    assert res.returncode == code, res.stderr
    assert res.stdout == out
    assert pb("ps", "-a", "-q", check=True).stdout == ""


@pytest.mark.parametrize("flags, message", [
    # each exits 125 with docker 20.10 too ("No command specified", "unable to find user nosuch: no
    # matching entries in passwd file", "invalid size: 'abc'", "network bogus not found", no image)
    (["--entrypoint", ""], "no command given"),
    (["-u", "nosuch"], "nosuch"),
    (["-m", "abc"], "invalid size: 'abc'"),
    (["--network", "bogus"], "--network 'bogus'"),
    (["-v", "relative"], "invalid volume specification: 'relative'"),
    # flags that would weaken isolation if misread (tests/runner/test_run_flags_docker_rules.py has them all)
    (["-v", "/tmp:/x:RO"], "invalid mode: RO"),
    (["-v", "/tmp:/x:readonly"], "invalid mode: readonly"),
    (["--cpus", "-1"], "Range of CPUs is from 0.01 to"),
    (["-m", "10"], "Minimum memory limit allowed is 6MB"),
    (["-p", "0:0"], "Invalid containerPort: 0"),
    (["-p", "65536:80"], "Invalid hostPort: 65536"),
    (["--env-file", "/dev/urandom"], "is not a regular file"),
])
def test_run_that_cannot_start_its_command_exits_125_as_docker(pb, flags, message):
    res = pb("run", "--rm", *flags, "runner-test")
    assert res.returncode == 125, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pybuild: error: ") and message in lines[0], res.stderr
    assert pb("ps", "-a", "-q", check=True).stdout == ""


def test_run_of_an_unknown_image_exits_125(pb):
    res = pb("run", "--rm", "no-such-image:1", "true")
    assert res.returncode == 125 and res.stderr.startswith("pybuild: error: ") and "Traceback" not in res.stderr


def test_init_is_pid1_and_the_command_its_child(pb):
    res = pb("run", "--rm", "--init", "runner-test", "sh", "-c", "echo $$; cat /proc/1/status | grep -E '^(PPid|Name)'")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split("\n")
    assert lines[0] != "1" and "python" in lines[1]


@pytest.mark.parametrize("init, code", [
    (True, 130 + 0),
    (False, None),
])
def test_sigint_ends_a_foreground_run_only_with_init(pb, store_root, cleanup, init, code):
    """The tutorial's "Ctrl-C won't stop node": PID 1 without a handler ignores SIGINT; --init forwards it."""
    name = f"fg-{int(init)}"
    cleanup.append(name)
    cmd = [sys.executable, "-m", "builder.cli", "--root", store_root, "run", "--rm", "--name", name,
           *(["--init"] if init else []), "--stop-timeout", "1", "runner-test", "sleeper"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            rc = None
        assert rc == code
        if not init:  # then `stop` kills it after its timeout
            stopped = pb("stop", name)
            assert stopped.returncode == 0, stopped.stderr
            assert proc.wait(timeout=10) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_detached_http_server_through_p_and_a_fast_stop(pb, cleanup):
    port = free_port()
    cleanup.append("web")
    cid = pb("run", "-d", "--init", "--name", "web", "-p", f"127.0.0.1:{port}:3000", "runner-test", "hiserver", check=True).stdout.strip()
    assert len(cid) == 64
    wait_for(lambda: "listening" in logs(pb, "web"), what="the server")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        assert r.read() == b"hi lol\n"
    ps = pb("ps", check=True).stdout
    assert "web" in ps and f"127.0.0.1:{port}->3000/tcp" in ps
    t0 = time.monotonic()
    pb("stop", "web", check=True)
    assert time.monotonic() - t0 < 5  # with --init, SIGTERM reaches perl at once (bench/ measures it)
    st = inspect(pb, "web")["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 143
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_port_in_use_is_a_clear_error_before_the_container_starts(pb):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = pb("run", "--rm", "-p", f"127.0.0.1:{port}:80", "runner-test", "true")
    assert res.returncode == 125  # docker's code for a container that could not start
    assert f"cannot bind 127.0.0.1:{port}" in res.stderr and "Address already in use" in res.stderr
    assert pb("ps", "-a", "-q", check=True).stdout == ""


def test_tcp_and_udp_ports_together(pb, cleanup):
    tport, uport = free_port(), free_port()
    cleanup.append("multi")
    pb("run", "-d", "--name", "multi", "-p", f"127.0.0.1:{tport}:7000", "-p", f"127.0.0.1:{uport}:7001/udp",
       "runner-test", "sh", "-c", "tcpcount 7000 & exec udpecho 7001", check=True)
    payload = os.urandom(3 << 20)

    def tcp_roundtrip():
        try:
            with socket.create_connection(("127.0.0.1", tport), timeout=5) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                return s.makefile().readline().strip()
        except OSError:
            return None
    assert wait_for(tcp_roundtrip, what="tcp") == str(len(payload))

    def udp_roundtrip():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(0.5)
            u.sendto(b"ping", ("127.0.0.1", uport))
            try:
                return u.recv(100)
            except OSError:
                return None
    assert wait_for(udp_roundtrip, what="udp") == b"echo:ping"


def test_memory_limit_oom_kills_and_inspect_says_so(pb, cleanup):
    cleanup.append("oom")
    res = pb("run", "--name", "oom", "--memory", "80m", "runner-test", "memfill")
    assert res.returncode == 137
    assert inspect(pb, "oom")["State"]["OOMKilled"] is True


def test_cpus_limit_by_the_cgroups_own_accounting_and_stats(pb, cleanup):
    cleanup.append("cpu")
    pb("run", "-d", "--name", "cpu", "--cpus", "0.05", "--memory", "80m", "runner-test", "spin", check=True)
    dirs = inspect(pb, "cpu")["Cgroups"]
    acct = next(d for d in dirs if os.path.exists(os.path.join(d, "cpuacct.usage")))

    def used() -> int:
        with open(os.path.join(acct, "cpuacct.usage")) as f:
            return int(f.read())
    u0, t0 = used(), time.monotonic()
    time.sleep(3)
    share = (used() - u0) / ((time.monotonic() - t0) * 1e9)
    assert 0 < share <= 0.10
    out = pb("stats", "--no-stream", "cpu", check=True).stdout
    row = out.splitlines()[1]
    assert "80MB" in row.replace("83.9MB", "80MB") or "83.9MB" in row
    cpu_pct = float(row.split()[2].rstrip("%"))
    assert cpu_pct <= 10


def test_exec_sees_files_and_processes_and_pause_stops_a_counter(pb, cleanup):
    cleanup.append("count")
    pb("run", "-d", "--name", "count", "runner-test", "sh", "-c", "echo secret > /tmp/mark; exec counter", check=True)
    wait_for(lambda: len(logs(pb, "count").split()) > 3, what="the counter")
    res = pb("exec", "count", "sh", "-c", "cat /tmp/mark; cat /proc/1/cmdline | tr '\\0' ' '")
    assert res.returncode == 0 and res.stdout.startswith("secret\n/bin/sh /usr/local/bin/counter")
    assert pb("exec", "count", "sh", "-c", "exit 5").returncode == 5
    pb("pause", "count", check=True)
    time.sleep(0.2)
    before = len(logs(pb, "count").split())
    time.sleep(0.5)
    assert len(logs(pb, "count").split()) == before
    assert inspect(pb, "count")["State"]["Status"] == "paused"
    pb("unpause", "count", check=True)
    wait_for(lambda: len(logs(pb, "count").split()) > before + 3, what="the counter to resume")
    top = pb("top", "count", check=True).stdout
    assert "counter" in top


def test_kill_9_of_the_monitor_reconciles_to_exited_and_rm_cleans(pb, cleanup):
    cleanup.append("orphan")
    pb("run", "-d", "--name", "orphan", "runner-test", "sleeper", check=True)
    info = inspect(pb, "orphan")
    pid = info["State"]["Pid"]
    from runtime.containers.records import Records

    rec = Records(pb.root)
    monitor = rec.find("orphan").state.monitor_pid
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{monitor}"), what="the monitor to die")
    ps = pb("ps", "-a", check=True).stdout
    assert "Exited" in ps.splitlines()[1]
    assert not os.path.exists(f"/proc/{pid}")  # reconcile ended the container's processes
    assert all(not os.path.exists(d) for d in info["Cgroups"])
    pb("rm", "orphan", check=True)
    assert pb("ps", "-a", "-q", check=True).stdout == ""


def test_names_ids_prefixes_and_conflicts(pb, cleanup):
    cleanup.append("named")
    cid = pb("run", "-d", "--name", "named", "runner-test", "true", check=True).stdout.strip()
    pb("wait", cid[:6], check=True)
    again = pb("run", "--name", "named", "runner-test", "true")
    assert again.returncode == 125 and "already in use" in again.stderr  # docker: 125 (Conflict)
    auto = pb("run", "runner-test", "true", check=True)
    name = [l.split()[-1] for l in pb("ps", "-a", check=True).stdout.splitlines()[1:] if "named" not in l][0]
    assert "_" in name
    cleanup.append(name)
    assert pb("rm", "nope").returncode == 1
    assert pb("container", "prune", check=True).stdout.count("\n") == 2


@pytest.mark.parametrize("init, zombies", [
    (True, "0"),     # tini's test: the init reaps every orphan
    (False, "100"),  # a PID 1 that waits only for its own child (perl's system) keeps them
])
def test_orphaned_children_leave_no_zombies_with_init(pb, init, zombies):
    argv = ["orphans"] if init else ["perl", "-e", "exit(system('orphans') >> 8)"]
    res = pb("run", "--rm", *(["--init"] if init else []), "runner-test", *argv)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == zombies
