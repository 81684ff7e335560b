"""Fixtures of the runner tests: a tmp store holding the debootstrap base as debian:bookworm, and a
small test image made with the store API (one layer with a few scripts), plus a `pb` helper that runs
the real CLI in a subprocess against that store."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from corpus_paths import cli_runner

REPO = Path(__file__).resolve().parents[2]

SCRIPTS = {
    # prints a number every 50 ms: pause stops it, unpause resumes it
    "counter": "#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo $i; sleep 0.05; done\n",
    # the memory filler: tail keeps a line without newline in memory, and /dev/zero has none
    "memfill": "#!/bin/sh\nexec tail -n1 /dev/zero\n",
    # spins on the CPU for ever
    "spin": "#!/bin/sh\nwhile :; do :; done\n",
    # orphans 100 children that exit at once, then counts the zombies left in the container
    "orphans": "#!/bin/sh\nfor i in $(seq 100); do sh -c 'sleep 0.3 &'; done\nsleep 1.5\n"
               "grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l\n",
    # PID 1 without a SIGINT/SIGTERM handler, as node is
    # the tutorial's server: answers every HTTP request with "hi lol" (perl-base is in minbase)
    "hiserver": "#!/usr/bin/perl\nuse IO::Socket::INET;\n$|=1;\nmy $s = IO::Socket::INET->new(LocalAddr => '0.0.0.0', "
                "LocalPort => ($ARGV[0] || 3000), Listen => 16, ReuseAddr => 1) or die $!;\nprint \"listening\\n\";\n"
                "while (my $c = $s->accept) { my $r = ''; sysread($c, $r, 65536); "
                "print $c \"HTTP/1.0 200 OK\\r\\nContent-Length: 7\\r\\n\\r\\nhi lol\\n\"; close $c; }\n",
    # TCP: counts the bytes it receives and answers with the count; UDP: echoes each datagram
    "tcpcount": "#!/usr/bin/perl\nuse IO::Socket::INET;\nmy $s = IO::Socket::INET->new(LocalAddr => '0.0.0.0', "
                "LocalPort => $ARGV[0], Listen => 16, ReuseAddr => 1) or die $!;\n"
                "while (my $c = $s->accept) { my ($n, $buf, $r) = (0); while (($r = sysread($c, $buf, 1048576)) > 0) "
                "{ $n += $r } print $c \"$n\\n\"; close $c; }\n",
    "udpecho": "#!/usr/bin/perl\nuse IO::Socket::INET;\nmy $s = IO::Socket::INET->new(LocalAddr => '0.0.0.0', "
               "LocalPort => $ARGV[0], Proto => 'udp') or die $!;\n"
               "while (1) { my $d; my $peer = $s->recv($d, 65535); $s->send(\"echo:$d\", 0, $peer); }\n",
    "sleeper": "#!/bin/sh\necho ready\nexec sleep 1000\n",
}


def _layer_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("usr", "usr/local", "usr/local/bin"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, text in sorted(SCRIPTS.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"usr/local/bin/{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="session")
def store_root(tmp_path_factory, base_tarball) -> str:
    from cache.archive import import_rootfs, store_layer_stream
    from cache.store import Store

    root = str(tmp_path_factory.mktemp("runner") / "store")
    store = Store.open(root)
    with open(base_tarball, "rb") as f:
        base = import_rootfs(store, f, "debian:bookworm")
    layer = store_layer_stream(store, io.BytesIO(_layer_tar()), "none")
    img = store.commit(base.with_layer(layer, {"created_by": "runner test scripts"}).with_config(Cmd=["sh"]))
    store.tag("runner-test:latest", img)
    return root


@pytest.fixture()
def pb(store_root):
    """pb("run", "--rm", ...) -> CompletedProcess of the real CLI on the test store."""
    return cli_runner(store_root)


@pytest.fixture()
def cleanup(pb):
    """Containers named here are removed at the end of the test, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        pb("rm", "-f", name)
