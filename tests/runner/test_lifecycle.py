"""The rest of the lifecycle through the CLI: start/restart/kill -s, logs --tail/-f, cp both ways
(and never out of the container's root), export, container prune, and the run flags people type
(-e, --env-file, -w, -u, -v, --tmpfs, --read-only, --entrypoint, --cap-drop, -i)."""
from __future__ import annotations

import subprocess
import tarfile

import pytest

from test_run import wait_for  # the runner tests' helpers (tests/runner is on sys.path)

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]


def test_start_restart_kill_and_logs(pb, cleanup):
    cleanup.append("life")
    pb("run", "-d", "--name", "life", "runner-test", "sh", "-c", "echo started; exec sleep 1000", check=True)
    wait_for(lambda: "started" in pb("logs", "life").stdout, what="the first output")
    assert pb("kill", "-s", "TERM", "life", check=True).returncode == 0   # PID 1 ignores TERM
    assert "Up" in pb("ps", check=True).stdout or "running" in pb("ps", check=True).stdout.lower()
    pb("kill", "life", check=True)                                         # KILL it cannot
    assert pb("wait", "life", check=True).stdout.strip() == "137"
    pb("start", "life", check=True)
    wait_for(lambda: pb("logs", "life").stdout.count("started") == 2, what="the second start")
    pb("restart", "-t", "1", "life", check=True)
    wait_for(lambda: pb("logs", "life").stdout.count("started") == 3, what="the restart")
    assert pb("logs", "--tail", "1", "life", check=True).stdout == "started\n"
    follow = subprocess.Popen([*pb.argv, "logs", "-f", "life"], stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout.readline() == "started\n"
        pb("stop", "-t", "1", "life", check=True)
        follow.wait(timeout=15)      # -f ends when the container does
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def test_cp_both_ways_export_and_prune(pb, cleanup, tmp_path):
    cleanup.append("files")
    pb("run", "--name", "files", "runner-test", "sh", "-c", "mkdir -p /data && echo inside > /data/f && ln -s / /data/root",
       check=True)
    pb("cp", "files:/data/f", str(tmp_path / "out.txt"), check=True)
    assert (tmp_path / "out.txt").read_text() == "inside\n"
    (tmp_path / "in.txt").write_text("from host\n")
    pb("cp", str(tmp_path / "in.txt"), "files:/data/in.txt", check=True)
    # through a link to the container's / : still the container's, never the host's /etc
    pb("cp", str(tmp_path / "in.txt"), "files:/data/root/etc/planted", check=True)
    import os

    assert not os.path.exists("/etc/planted")
    pb("export", "files", "-o", str(tmp_path / "fs.tar"), check=True)
    with tarfile.open(tmp_path / "fs.tar") as tar:
        names = set(tar.getnames())
        assert {"data/f", "data/in.txt", "etc/planted"} <= {n.lstrip("./") for n in names}
    assert "files" in pb("ps", "-a", check=True).stdout
    pruned = pb("container", "prune", "-f", check=True)
    assert pb("ps", "-a", "-q", check=True).stdout == "" and pruned.stdout.strip()


@pytest.mark.parametrize("flags, argv, out", [
    (["-e", "A=1", "-e", "B=two words"], ["sh", "-c", 'echo "$A|$B"'], "1|two words\n"),
    (["-w", "/tmp/made"], ["pwd"], "/tmp/made\n"),
    (["-u", "nobody"], ["id", "-un"], "nobody\n"),
    (["--entrypoint", "echo"], ["via", "entrypoint"], "via entrypoint\n"),
    (["--tmpfs", "/scratch"], ["sh", "-c", "grep -c ' /scratch tmpfs' /proc/mounts"], "1\n"),
    (["--read-only"], ["sh", "-c", "touch /x 2>/dev/null && echo wrote || echo refused"], "refused\n"),
    (["--cap-drop", "ALL"], ["sh", "-c", "grep CapBnd /proc/self/status"], "CapBnd:\t0000000000000000\n"),
])
def test_run_flags(pb, flags, argv, out):
    res = pb("run", "--rm", *flags, "runner-test", *argv)
    assert (res.returncode, res.stdout) == (0, out), res.stderr


def test_env_file_volume_and_stdin(pb, tmp_path):
    (tmp_path / "env").write_text("# comment\nFROM_FILE=yes\n")
    share = tmp_path / "share"
    share.mkdir()
    (share / "host.txt").write_text("host file\n")
    res = pb("run", "--rm", "--env-file", str(tmp_path / "env"), "-v", f"{share}:/share", "runner-test",
             "sh", "-c", 'echo "$FROM_FILE"; cat /share/host.txt; echo made > /share/back.txt')
    assert res.stdout == "yes\nhost file\n", res.stderr
    assert (share / "back.txt").read_text() == "made\n"
    for mode in ("ro", "ro,Z", "z,ro,rprivate,cached"):  # docker's option list: "ro,Z" mounted rw before
        ro = pb("run", "--rm", "-v", f"{share}:/share:{mode}", "runner-test", "sh", "-c", "echo x > /share/no 2>/dev/null; echo $?")
        assert ro.stdout.strip() != "0" and not (share / "no").exists(), (mode, ro.stderr)
    piped = pb("run", "--rm", "-i", "runner-test", "sh", "-c", "tr a-z A-Z", input="shout\n")
    assert piped.stdout == "SHOUT\n"


def test_a_remover_killed_mid_rm_leaves_trash_the_next_listing_sweeps(pb, tmp_path):
    import os
    import signal
    import subprocess as sp

    from runtime.containers.records import Records

    records = Records(pb.root)
    victim = sp.Popen(["sleep", "60"])
    trash = os.path.join(records.dir, "a" * 64 + f".rm{victim.pid}")
    os.makedirs(os.path.join(trash, "upper", "deep"))
    assert pb("ps", "-a", check=True).returncode == 0 and os.path.isdir(trash)  # its remover lives
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    pb("ps", "-a", check=True)
    assert not os.path.exists(trash)
