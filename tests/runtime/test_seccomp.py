"""Seccomp (issue 12, item 3): Docker's default profile, interpreted from moby's JSON and loaded with
libseccomp in every sandboxed process.

The raw syscalls are made with perl's syscall() (perl-base is in the debootstrap minbase; the image
has no python and no keyctl). Each answer below is what dockerd 20.10 (runc 1.1.5, libseccomp 2.5.4)
gives for the same call on this machine, except AF_VSOCK, which moby's newer profile (the one
vendored here) refuses and 20.10's allowed. A key is only ever added to the process keyring (-2),
which dies with the process: a test that failed could not leave a key in the host root's keyrings.
"""
from __future__ import annotations

import errno
import json
import os

import pytest

from runtime import caps, seccomp

# x86_64 syscall numbers of the probes (the tests of the live filter run on x86_64 only)
NR = {"add_key": 248, "request_key": 249, "keyctl": 250, "personality": 135, "socket": 41, "clone": 56,
      "clone3": 435, "unshare": 272, "kexec_load": 246, "bpf": 321, "perf_event_open": 298, "mount": 165}
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17


def probe(*calls: tuple) -> str:
    """A shell line: perl makes each (label, syscall, args...) and prints `label=ok` or `label=ERRNO`.
    A clone that succeeds makes its child exit at once."""
    body = ";".join(
        f"t({json.dumps(label)}, {NR[name]}, {', '.join(json.dumps(a) if isinstance(a, str) else str(a) for a in args)})"
        for label, name, *args in calls)
    script = ("sub t { my ($n, $nr, @a) = @_; my $r = syscall($nr, @a); syscall(60, 0) if $r == 0 && $nr == 56;"
              " print \"$n=\", ($r < 0 ? $!+0 : \"ok\"), \"\\n\" } " + body)
    return "perl -e '" + script.replace("'", "'\\''") + "'"


def answers(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


EPERM, ENOSYS = str(errno.EPERM), str(errno.ENOSYS)
KEYS = [("add_key", "add_key", "user", "pybuild-seccomp-test", "v", 1, -2),
        ("keyctl", "keyctl", 0, -4, 0),                    # KEYCTL_GET_KEYRING_ID of the user keyring
        ("request_key", "request_key", "user", "pybuild-seccomp-test", 0, 0)]


# --- the profile, as moby interprets it (no root needed) ---------------------------------------

def _names(rules: list[dict]) -> set[str]:
    return {n for r in rules for n in r.get("names", [])}


def _default_doc() -> dict:
    with open(os.path.join(os.path.dirname(seccomp.__file__), "seccomp_default.json")) as f:
        return json.load(f)


def test_the_default_profile_is_mobys_with_its_provenance():
    doc = _default_doc()
    assert "moby/profiles/seccomp" in doc["comment"] and "Apache" in doc["comment"]
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO" and doc["defaultErrnoRet"] == errno.EPERM
    allowed = _names(r for r in doc["syscalls"] if not r.get("includes") and not r.get("excludes")
                     and r["action"] == "SCMP_ACT_ALLOW" and not r.get("args"))
    assert {"read", "write", "execve", "openat", "clone3"} - allowed == {"clone3"}
    assert not {"keyctl", "add_key", "request_key", "mount", "unshare", "kexec_load", "bpf",
                "perf_event_open", "userfaultfd", "setns"} & allowed


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the arch-conditional groups checked are x86_64's")
def test_capability_conditional_groups_follow_the_containers_capabilities():
    doc = _default_doc()
    plain = _names(seccomp._select(doc, {"CAP_" + c for c in caps.DOCKER_DEFAULT}, "t"))
    admin = _names(seccomp._select(doc, {"CAP_" + c for c in (*caps.DOCKER_DEFAULT, "SYS_ADMIN")}, "t"))
    assert {"mount", "unshare", "setns", "bpf", "fanotify_init"} <= admin - plain
    clone3 = [(r["action"], r.get("errnoRet")) for r in seccomp._select(doc, {"CAP_CHOWN"}, "t") if "clone3" in r["names"]]
    assert clone3 == [("SCMP_ACT_ERRNO", errno.ENOSYS)]  # without SYS_ADMIN: ENOSYS, so glibc uses clone
    assert "arch_prctl" in plain and "arm_fadvise64_64" not in plain  # includes.arches: amd64 only
    clone_rules = [r for r in seccomp._select(doc, {"CAP_" + c for c in caps.DOCKER_DEFAULT}, "t")
                   if "clone" in r["names"]]
    assert [r.get("args") for r in clone_rules] == [[{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]]


def test_a_compiled_filter_and_the_unconfined_cases():
    f = seccomp.compile_profile(None, caps.DOCKER_DEFAULT, privileged=False)
    assert f is not None and f.instructions > 300 and len(f.program) % 8 == 0 and f.rules > 300
    assert seccomp.compile_profile(None, caps.DOCKER_DEFAULT, privileged=True) is None  # as docker
    assert seccomp.compile_profile("unconfined", caps.DOCKER_DEFAULT, privileged=False) is None
    more = seccomp.compile_profile(None, (*caps.DOCKER_DEFAULT, "SYS_ADMIN"), privileged=False)
    assert more.rules > f.rules


@pytest.mark.parametrize("text,words", [
    ("{", "not valid JSON"),
    ("[]", "a JSON object"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', "unknown action 'SCMP_ACT_NOPE'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}',
     "both 'name' and 'names'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", '
     '"args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "bad argument rule"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": -3}]}',
     "errnoRet -3"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{}]}', "either one"),
])
def test_a_malformed_profile_is_one_clear_line(tmp_path, text, words):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(seccomp.SeccompError) as err:
        seccomp.read_option(str(path))
    message = str(err.value)
    assert words in message and str(path) in message and "\n" not in message


def test_a_missing_profile_file_is_named():
    with pytest.raises(seccomp.SeccompError, match=r"opening seccomp profile \(/nonexistent/p.json\) failed"):
        seccomp.read_option("/nonexistent/p.json")


def test_read_option_keeps_the_profile_text(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    assert seccomp.read_option(str(path)) == '{"defaultAction": "SCMP_ACT_ALLOW"}'
    assert seccomp.read_option("unconfined") == "unconfined"


# --- the filter, live in the sandbox (root) --------------------------------------------------------

live = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap,
        pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers of the probes are x86_64's")]


class TestLiveFilter:
    pytestmark = live

    def test_the_keyrings_are_refused(self, sandbox):
        out = sandbox.run(probe(*KEYS) + "; grep Seccomp: /proc/self/status")
        got = answers(out.output)
        assert (got["add_key"], got["keyctl"], got["request_key"]) == (EPERM, EPERM, EPERM), out.output
        assert "Seccomp:\t2" in out.output

    def test_new_namespaces_and_mount_are_refused(self, sandbox):
        out = sandbox.run(probe(("clone_newuser", "clone", CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
                                ("unshare_newuser", "unshare", CLONE_NEWUSER),
                                ("mount", "mount", "none", "/mnt", "tmpfs", 0, 0),
                                ("fork_like_clone", "clone", SIGCHLD, 0, 0, 0, 0))
                          + "; unshare -U true 2>/dev/null && echo cli_unshare=ok || echo cli_unshare=refused")
        got = answers(out.output)
        assert got == {"clone_newuser": EPERM, "unshare_newuser": EPERM, "mount": EPERM, "fork_like_clone": "ok",
                       "cli_unshare": "refused"}, out.output

    def test_argument_rules_and_the_rest(self, sandbox):
        out = sandbox.run(probe(("personality_query", "personality", 0xFFFFFFFF),
                                ("personality_linux32", "personality", 0x0008),
                                ("personality_no_aslr", "personality", 0x0040000),
                                ("socket_vsock", "socket", 40, 1, 0), ("socket_unix", "socket", 1, 1, 0),
                                ("clone3", "clone3", 0, 0), ("kexec_load", "kexec_load", 0, 0, 0, 0),
                                ("bpf", "bpf", 0, 0, 0), ("perf_event_open", "perf_event_open", 0, 0, -1, -1, 0)))
        got = answers(out.output)
        assert got == {"personality_query": "ok", "personality_linux32": "ok", "personality_no_aslr": EPERM,
                       "socket_vsock": EPERM, "socket_unix": "ok", "clone3": ENOSYS,  # glibc falls back to clone
                       "kexec_load": EPERM, "bpf": EPERM, "perf_event_open": EPERM}, out.output

    def test_a_syscall_newer_than_the_profile_is_enosys(self, sandbox):
        out = sandbox.run("perl -e 'syscall(1000) < 0 and print $!+0'")
        assert out.output.strip() == ENOSYS

    def test_a_normal_workload_runs(self, sandbox):
        out = sandbox.run("set -e; ls / >/dev/null; mkdir -p /tmp/w && cd /tmp/w; echo hi > a; cp a b; ln -s b c;"
                          " tar -cf t.tar a b c; rm a b c; tar -xf t.tar; sort b | uniq | wc -l; sleep 0.1 & wait;"
                          " find /usr/bin -maxdepth 1 -name sh; chown nobody b; chmod 600 b;"
                          " su -s /bin/sh nobody -c 'id -un'; date +%Y >/dev/null; echo DONE")
        assert out.exit_code == 0 and out.output.split() == ["1", "/usr/bin/sh", "nobody", "DONE"], out.output

    def test_cap_sys_admin_enables_dockers_groups(self, sandbox):
        out = sandbox.run(probe(("unshare_newuser", "unshare", CLONE_NEWUSER)) +
                          "; mkdir -p /mnt/t && mount -t tmpfs t /mnt/t && echo mount=ok", cap_add=["SYS_ADMIN"])
        assert answers(out.output) == {"unshare_newuser": "ok", "mount": "ok"}, out.output

    @pytest.mark.parametrize("spec", [{"seccomp": "unconfined"}, {"privileged": True}], ids=["unconfined", "privileged"])
    def test_unconfined_lifts_it(self, sandbox, spec):
        out = sandbox.run(probe(KEYS[1], ("unshare_newuser", "unshare", CLONE_NEWUSER))
                          + "; grep Seccomp: /proc/self/status", **spec)
        got = answers(out.output)
        assert (got["keyctl"], got["unshare_newuser"]) == ("ok", "ok") and "Seccomp:\t0" in out.output, out.output

    def test_a_custom_profile_is_the_one_used(self, sandbox):
        profile = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES}]})
        out = sandbox.run("mkdir /x 2>/dev/null || echo mkdir=refused; " + probe(KEYS[1]), seccomp=profile)
        assert answers(out.output) == {"mkdir": "refused", "keyctl": "ok"}, out.output

    def test_explain_names_the_filter(self, sandbox):
        out = sandbox.run("true")
        assert any(line.startswith("# seccomp: Docker's default seccomp profile") for line in out.explain)
