"""Seccomp through the CLI (issue 12, item 3): `run` and `exec` and a build's RUN get Docker's default
profile; `--security-opt seccomp=unconfined|PROFILE.json` as docker's, kept in the container's
record so that `exec` gets the same (even once the file is gone). Each as dockerd 20.10 answers.
"""
from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]

STATUS = "grep Seccomp: /proc/self/status; unshare -U true 2>/dev/null && echo userns=ok || echo userns=refused"
DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}


def lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


@pytest.mark.parametrize("opts,expected", [
    ((), ["Seccomp: 2", "userns=refused"]),
    (("--security-opt", "seccomp=unconfined"), ["Seccomp: 0", "userns=ok"]),
    (("--privileged",), ["Seccomp: 0", "userns=ok"]),
    (("--cap-add", "SYS_ADMIN"), ["Seccomp: 2", "userns=ok"]),   # the profile's CAP_SYS_ADMIN group
], ids=["default", "unconfined", "privileged", "cap-add-sys-admin"])
def test_run_and_exec_get_the_same_filter(pb, cleanup, opts, expected):
    name = f"seccomp-{len(cleanup)}-{'-'.join(o.strip('-').split('=')[-1] for o in opts) or 'default'}"
    cleanup.append(name)
    assert lines(pb("run", "--rm", *opts, "debian:bookworm", "sh", "-c", STATUS, check=True).stdout) == expected
    pb("run", "-d", "--name", name, *opts, "debian:bookworm", "sleep", "1000", check=True)
    assert lines(pb("exec", name, "sh", "-c", STATUS, check=True).stdout) == expected


def test_a_custom_profile_is_kept_in_the_record(pb, cleanup, tmp_path):
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text(json.dumps(DENY_MKDIR))
    cleanup.append("seccomp-custom")
    try_mkdir = "mkdir /made 2>/dev/null && echo mkdir=ok || echo mkdir=refused"
    out = pb("run", "--rm", "--security-opt", f"seccomp={profile}", "debian:bookworm", "sh", "-c", try_mkdir, check=True)
    assert out.stdout.split() == ["mkdir=refused"]
    pb("run", "-d", "--name", "seccomp-custom", "--security-opt", f"seccomp={profile}", "debian:bookworm",
       "sleep", "1000", check=True)
    profile.unlink()  # docker keeps the profile's text with the container; so does pybuild
    assert pb("exec", "seccomp-custom", "sh", "-c", try_mkdir, check=True).stdout.split() == ["mkdir=refused"]


@pytest.mark.parametrize("content,opt,words", [
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [', "seccomp={path}", "not valid JSON"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', "seccomp={path}", "unknown action 'SCMP_ACT_NOPE'"),
    (None, "seccomp=/nonexistent/profile.json", "opening seccomp profile (/nonexistent/profile.json) failed"),
    (None, "seccomp", "invalid --security-opt"),
    (None, "apparmor=docker-default", "not supported by pybuild"),
])
def test_a_bad_security_opt_is_one_clear_line_and_nothing_runs(pb, tmp_path, content, opt, words):
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content)
    out = pb("run", "--rm", "--security-opt", opt.format(path=path), "debian:bookworm", "echo", "RAN")
    assert out.returncode == 125 and "RAN" not in out.stdout
    assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert pb("ps", "-a", "-q", check=True).stdout.strip() == ""


def test_a_build_run_step_is_filtered(pb, tmp_path):
    (tmp_path / "Dockerfile").write_text(f"FROM debian:bookworm\nRUN {STATUS}\n")
    out = pb("build", "--no-cache", "--progress", "plain", "-t", "seccomp-run-step", str(tmp_path), check=True)
    text = " ".join((out.stdout + out.stderr).split())
    assert "Seccomp: 2" in text and "userns=refused" in text
    pb("rmi", "seccomp-run-step")
