"""`run`'s flag values by docker 20.10's rules and messages: each row was run against dockerd 20.10
(`. shared/anchors/env.sh; $DOCKER run --rm FLAG localhost/debian:bookworm-min true`), which exits 125
with the message quoted. Where pybuild differs, the row says why (a thing it does not support)."""
from __future__ import annotations

import os

import pytest

from builder.cli._runflags import MAX_ENV_FILE, parse_cpus, parse_env_lines, parse_memory, parse_volume, read_env_file
from grammar.errors import UsageError
from runtime.portproxy import PortMapping, parse_publish

NCPU = len(os.sched_getaffinity(0))


@pytest.mark.parametrize("spec, result", [
    ("/tmp:/x", "/tmp:/x:rw"),
    ("/tmp:/x:", "/tmp:/x:rw"),                    # docker: an empty mode is rw
    ("/tmp:/x:ro", "/tmp:/x:ro"),
    ("/tmp:/x:ro,Z", "/tmp:/x:ro"),                # mounted read-write before
    ("/tmp:/x:Z", "/tmp:/x:rw"),                   # z/Z accepted: no SELinux labels here
    ("/tmp:/x:z,ro", "/tmp:/x:ro"),
    ("/tmp:/x:rw,cached", "/tmp:/x:rw"),
    ("/tmp:/x:private", "/tmp:/x:rw"),
    ("/tmp:/x:ro,consistent,rprivate,z", "/tmp:/x:ro"),
])
def test_volume_options_accepted_as_docker(spec, result):
    assert parse_volume(spec) == result


@pytest.mark.parametrize("spec, message", [
    ("/tmp:/x:RO", "invalid mode: RO"),            # docker 20.10, word for word
    ("/tmp:/x:readonly", "invalid mode: readonly"),
    ("/tmp:/x:ro,ro", "invalid mode: ro,ro"),
    ("/tmp:/x:ro,rw", "invalid mode: ro,rw"),
    ("/tmp:/x:z,Z", "invalid mode: z,Z"),
    ("/tmp:/x:delegated,cached", "invalid mode: delegated,cached"),
    ("/tmp:/x:ro,", "invalid mode: ro,"),
    ("/tmp:/x:ro:z", "invalid volume specification: '/tmp:/x:ro:z'"),
    ("/tmp:", "invalid volume specification: '/tmp:'"),
    ("/x:ro", "invalid volume specification: '/x:ro'"),
    ("/tmp:x", "invalid mount path: 'x' mount path must be absolute"),
    ("/tmp:/", "destination can't be '/'"),
    ("/tmp:/x:nocopy", "field VolumeOptions must not be specified"),
    # docker refuses these only where the host's mount is not shared; pybuild's never propagate
    ("/tmp:/x:rshared", "rshared propagation is not supported"),
    ("/tmp:/x:rslave,ro", "rslave propagation is not supported"),
    # named and anonymous volumes: docker's, not pybuild's
    ("data:/x", "named volumes are not supported"),
    ("relative", "anonymous volumes are not supported"),
])
def test_volume_options_refused_as_docker(spec, message):
    with pytest.raises(UsageError) as err:
        parse_volume(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text, value", [
    ("6m", 6 << 20), ("6291456", 6 << 20), ("80m", 80 << 20), ("1.5g", 3 << 29), ("1GiB", 1 << 30), ("64mb", 64 << 20),
    ("0", None),                                   # docker: 0 is no limit
])
def test_memory_accepted(text, value):
    assert parse_memory(text) == value


@pytest.mark.parametrize("text, message", [
    ("10", "Minimum memory limit allowed is 6MB"),
    ("5m", "Minimum memory limit allowed is 6MB"),
    ("6291455", "Minimum memory limit allowed is 6MB"),
    ("-1", "invalid argument \"-1\" for \"-m, --memory\" flag: invalid size: '-1'"),
    ("10x", "invalid argument \"10x\" for \"-m, --memory\" flag: invalid size: '10x'"),
    ("abc", "invalid size: 'abc'"),
])
def test_memory_refused(text, message):
    with pytest.raises(UsageError, match=None) as err:
        parse_memory(text)
    assert message in str(err.value)


@pytest.mark.parametrize("text, value", [("0", None), ("0.01", 0.01), (str(NCPU), float(NCPU))])
def test_cpus_accepted(text, value):
    """--cpus 0 is docker's "no limit", as here (it was a 1% quota here when -m was given too)."""
    assert parse_cpus(text) == value


@pytest.mark.parametrize("text", ["-1", str(NCPU + 1), "1000", "0.001", "nan", "inf"])
def test_cpus_out_of_range_refused(text):
    with pytest.raises(UsageError) as err:
        parse_cpus(text)
    assert str(err.value) == f"Range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available"


def test_cpus_not_a_number():
    with pytest.raises(UsageError, match='invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'):
        parse_cpus("abc")


@pytest.mark.parametrize("spec, mapping", [
    ("80", PortMapping("0.0.0.0", 0, 80)),
    ("8080:80", PortMapping("0.0.0.0", 8080, 80)),
    ("0:80", PortMapping("0.0.0.0", 0, 80)),       # host port 0: the kernel picks one
    (":80", PortMapping("0.0.0.0", 0, 80)),
    ("127.0.0.1::80", PortMapping("127.0.0.1", 0, 80)),
    ("[::1]:8080:80/udp", PortMapping("::1", 8080, 80, "udp")),
    ("8080:80/TCP", PortMapping("0.0.0.0", 8080, 80)),
])
def test_publish_accepted(spec, mapping):
    assert parse_publish(spec) == mapping


@pytest.mark.parametrize("spec, message", [
    ("65536:80", "Invalid hostPort: 65536"),       # docker 20.10, word for word
    ("-1:80", "Invalid hostPort: -1"),
    ("abc:80", "Invalid hostPort: abc"),
    ("80:65536", "Invalid containerPort: 65536"),
    ("8080:80/foo", "Invalid proto: foo"),
    ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
    ("80:", "No port specified: 80:<empty>"),
    ("::1:8080:80", "too many colons in address"),
    # dockerd 20.10 takes a container port 0 and forwards nowhere; moby 29 refuses it (moby#51684)
    ("0:0", "Invalid containerPort: 0"),
    ("80:0", "Invalid containerPort: 0"),
    # what docker has and pybuild's proxy does not
    ("80-81:80", "port ranges are not supported"),
    ("8080:80/sctp", "sctp is not supported"),
])
def test_publish_refused(spec, message):
    with pytest.raises(UsageError) as err:
        parse_publish(spec)
    assert message in str(err.value)


@pytest.mark.parametrize("text, env", [
    ("# comment\n\nA=1\n", ["A=1"]),
    ("  B = spaced value \n", None),               # a name with whitespace: refused (below)
    ("C=with trailing  \r\n", ["C=with trailing  "]),  # the value as written (CR of CRLF dropped)
    ("\ufeffD=bom\n", ["D=bom"]),
    ("PASS\n", ["PASS"]),                          # taken from this environment by merge_env
    ("E=a=b\nF=", ["E=a=b", "F="]),
])
def test_env_file_lines_as_docker(text, env):
    if env is None:
        with pytest.raises(UsageError, match="poorly formatted environment: variable 'B ' contains whitespaces"):
            parse_env_lines(text.encode(), "f")
    else:
        assert parse_env_lines(text.encode(), "f") == env


def test_env_file_refuses_bad_names_and_bytes():
    with pytest.raises(UsageError, match="poorly formatted environment: no variable name on line '=1'"):
        parse_env_lines(b"=1\n", "f")
    with pytest.raises(UsageError, match=r"env file f contains invalid utf8 bytes at line 2: \[255, 61, 49\]"):
        parse_env_lines(b"A=1\n\xff=1\n", "f")


def test_env_file_reads_only_a_regular_file_of_bounded_size(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, message in [(str(fifo), "is not a regular file"),          # docker hangs on it
                          ("/dev/urandom", "is not a regular file"),     # docker: invalid utf8 bytes
                          ("/dev/zero", "is not a regular file"),
                          (str(tmp_path), f"read {tmp_path}: is a directory"),
                          (str(tmp_path / "none"), f"open {tmp_path / 'none'}: no such file or directory")]:
        with pytest.raises(UsageError) as err:
            read_env_file(path)
        assert message in str(err.value)
    big = tmp_path / "big"
    big.write_bytes(b"A=" + b"x" * MAX_ENV_FILE + b"\n")
    with pytest.raises(UsageError, match="larger than"):
        read_env_file(str(big))
    ok = tmp_path / "ok"
    ok.write_text("A=1\n")
    os.symlink(ok, tmp_path / "link")
    assert read_env_file(str(tmp_path / "link")) == ["A=1"]
