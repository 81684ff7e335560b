"""`run`'s flag values by docker 20.10's rules and in its words (checked against dockerd 20.10 on the
same host): a value that would weaken isolation if misread (a read-only volume mounted read-write, a
zero CPU quota, a 10-byte memory limit, a FIFO as --env-file) is refused, never guessed at.

Every error is a UsageError; `run` turns it into exit 125, as docker does.
"""
from __future__ import annotations

import os
import re
import stat

from grammar.errors import UsageError

MIN_MEMORY = 6 << 20          # dockerd's linuxMinMemory
MAX_ENV_FILE = 4 << 20        # more than an execve can pass (ARG_MAX): nothing sane is larger

# docker's volume/mounts/linux_parser.go: at most one option of each kind
_RW_MODES = {"rw", "ro"}
_LABEL_MODES = {"z", "Z"}     # SELinux relabelling: accepted as docker does; pybuild sets no labels
_CONSISTENCY = {"consistent", "cached", "delegated", "default"}  # macOS hints: no-ops on Linux
_PROPAGATION = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
_COPY = {"nocopy"}
_KINDS = (_RW_MODES, _LABEL_MODES, _PROPAGATION, _COPY, _CONSISTENCY)


def parse_volume(spec: str) -> str:
    """`-v HOST:CTR[:OPTS]` checked as dockerd does; returns it as `HOST:CTR:ro` or `HOST:CTR:rw`.

    OPTS is a comma list with at most one of each kind: ro|rw; z|Z (accepted; there are no SELinux
    labels here, so nothing is relabelled); consistent|cached|delegated|default (no-ops on Linux);
    private|rprivate (what pybuild's mounts are anyway). shared/rshared/slave/rslave are refused:
    a container's mounts never propagate to or from the host here. Named volumes are not supported."""
    parts = spec.split(":")
    if len(parts) == 2 and _valid_mode(parts[1]):
        raise UsageError(f"invalid volume specification: '{spec}'")  # `/foo:ro`: a volume cannot have a mode
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        if len(parts) == 1 and parts[0]:
            raise UsageError(f"invalid volume specification: '{spec}': anonymous volumes are not supported",
                             hint="use -v /ABSOLUTE/HOST/PATH:/CONTAINER/PATH[:ro]")
        raise UsageError(f"invalid volume specification: '{spec}'", hint="use -v /HOST/PATH:/CONTAINER/PATH[:ro]")
    host, ctr = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    if not _valid_mode(mode):
        raise UsageError(f"invalid mode: {mode}", hint="options are ro|rw, z|Z, a propagation and a consistency, each once")
    if not host.startswith("/"):
        raise UsageError(f"-v {spec}: {host!r} is not an absolute host path, and named volumes are not supported",
                         hint="give the host directory as an absolute path")
    if not ctr.startswith("/"):
        raise UsageError(f"invalid volume specification: '{spec}': invalid mount config for type \"bind\": "
                         f"invalid mount path: '{ctr}' mount path must be absolute")
    if os.path.normpath(ctr) == "/":
        raise UsageError(f"invalid volume specification: '{spec}': invalid mount config for type \"bind\": "
                         "invalid specification: destination can't be '/'")
    opts = mode.split(",") if mode else []
    if "nocopy" in opts:
        raise UsageError(f"invalid volume specification: '{spec}': invalid mount config for type \"bind\": "
                         "field VolumeOptions must not be specified")
    shared = [o for o in opts if o in _PROPAGATION - {"private", "rprivate"}]
    if shared:
        raise UsageError(f"-v {spec}: {shared[0]} propagation is not supported: pybuild keeps a container's "
                         "mounts private (rprivate), nothing propagates to or from the host",
                         hint="drop the option, or use private/rprivate")
    return f"{host}:{ctr}:{'ro' if 'ro' in opts else 'rw'}"


def _valid_mode(mode: str) -> bool:
    if mode == "":
        return True
    counts = [0] * len(_KINDS)
    for opt in mode.split(","):
        for i, kind in enumerate(_KINDS):
            if opt in kind:
                counts[i] += 1
                break
        else:
            return False  # unknown, empty (`ro,`), or another case (`RO`, `readonly`)
    return max(counts) <= 1


_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")  # docker's units.RAMInBytes
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_memory(text: str, flag: str = "-m, --memory") -> int | None:
    """Bytes (binary units, as docker); 0 is no limit (None); below 6 MiB is refused as dockerd does."""
    m = _SIZE.match(text)
    try:
        value = int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]) if m else None
    except ValueError:
        value = None
    if value is None:
        raise UsageError(f"invalid argument \"{text}\" for \"{flag}\" flag: invalid size: '{text}'",
                         hint="a number with an optional unit b, k, m, g, e.g. 80m")
    if value == 0:
        return None
    if value < MIN_MEMORY:
        raise UsageError("Minimum memory limit allowed is 6MB")
    return value


def parse_cpus(text: str) -> float | None:
    """CPUs worth of quota; 0 is no limit (None), as docker; negative, above this host's CPUs or
    below 0.01 (a quota the kernel refuses) is refused with dockerd's message."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"invalid argument \"{text}\" for \"--cpus\" flag: failed to parse {text} as a rational number") from None
    ncpu = len(os.sched_getaffinity(0))
    if value != value or value < 0 or value > ncpu or 0 < value < 0.01:  # (value != value: NaN)
        raise UsageError(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    return value or None


def read_env_file(path: str) -> list[str]:
    """docker's --env-file: NAME=VALUE lines (the value as written), `NAME` alone passes this
    environment's NAME through, # comments and blank lines skipped. Only a regular file is read (a
    FIFO or a device could block or never end), and at most MAX_ENV_FILE bytes of it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block the open
    except OSError as err:
        raise UsageError(f"open {path}: {(err.strerror or str(err)).lower()}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"read {path}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"env file {path} is not a regular file", hint="give a file of NAME=VALUE lines")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ENV_FILE:
                raise UsageError(f"env file {path} is larger than {MAX_ENV_FILE >> 20} MiB",
                                 hint="an environment cannot hold that much")
    finally:
        os.close(fd)
    return parse_env_lines(b"".join(chunks), path)


def parse_env_lines(data: bytes, path: str) -> list[str]:
    """docker's opts.parseKeyValueFile, line by line (a pass-through `NAME` stays bare: merge_env
    takes its value from this environment, or drops it)."""
    out = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for n, raw in enumerate(lines, 1):
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            shown = list(raw[:64])
            raise UsageError(f"env file {path} contains invalid utf8 bytes at line {n}: {shown}"
                             f"{' ...' if len(raw) > 64 else ''}") from None
        if n == 1:
            text = text.removeprefix("\ufeff")
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        name = name.lstrip(" \t")
        if " " in name or "\t" in name:
            raise UsageError(f"poorly formatted environment: variable '{name}' contains whitespaces")
        if not name:
            raise UsageError(f"poorly formatted environment: no variable name on line '{line}'")
        out.append(f"{name}={value}" if eq else line.strip())
    return out
