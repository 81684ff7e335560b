"""One image, as data both tools can be compared on: the config fields a Dockerfile sets, the
history's layer shape, and every entry of each layer above the base.

Normalisations (each with its reason; nothing else is normalised):
- N1 mtimes made at build time (>= BUILD_TIME) become "build": a RUN's or a COPY's own clock differs
  between two builds of the same tool. Mtimes kept from a source (the context's EPOCH, a tar's
  member) are compared as they are.
- N2 directory mtimes are not compared: creating anything inside a directory changes its mtime, at
  the build's own time (N1), and tools differ in the order they set it.
- N3 tar member order, "./" prefixes, trailing "/", uname/gname and file-type bits repeated in the
  mode field are ignored: the OCI spec leaves them to the writer; ids are compared numerically.
- N4 a hardlink is described as the file it links to plus its group (the group's first path,
  sorted), since which member is the "first" copy depends on the writer's order.
- N5 history: only the layer shape (empty_layer per entry) is compared; `created_by` text and
  `created` times are the tool's own wording and clock.
- N6 files the container runtime itself makes at run time are not part of an image (docker creates
  /etc/hosts, /etc/resolv.conf, /etc/hostname mount points in the container, not the layer).
- N7 when the runtime itself refuses to start the container (docker's "docker: Error response from
  daemon: ..." and pybuild's "pybuild: ..." lines: command not found, no such user, no command),
  its message is its own wording: only that it refused and its exit code are compared.
"""
from __future__ import annotations

import hashlib
import tarfile
from typing import IO, Callable, Iterable

BUILD_TIME = 1600000000     # anything newer than 2020-09 was made by the build itself (N1)
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
               "Healthcheck", "OnBuild", "Shell", "StopSignal")
_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
          tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def _name(member: str) -> str:
    name = member
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def describe_layer(tar_file: IO[bytes]) -> list[dict]:
    """Every entry of one layer tar (any compression), sorted by path (N3, N4)."""
    entries: dict[str, dict] = {}
    links: list[tuple[str, str]] = []
    with tarfile.open(fileobj=tar_file, mode="r|*") as tar:
        for m in tar:
            path = _name(m.name)
            if not path:
                continue
            kind = _KINDS.get(m.type, f"type-{m.type!r}")
            e = {"path": path, "type": kind, "mode": oct(m.mode & 0o7777), "uid": m.uid, "gid": m.gid}
            base = path.rsplit("/", 1)[-1]
            if base.startswith(".wh."):
                e = {"path": path, "type": "whiteout"}
            elif kind == "file":
                data = tar.extractfile(m).read()
                e.update(size=len(data), sha256=hashlib.sha256(data).hexdigest()[:16])
            elif kind == "symlink":
                e["target"] = m.linkname
            elif kind == "hardlink":
                links.append((path, _name(m.linkname)))
            if kind != "dir" and e["type"] != "whiteout":
                e["mtime"] = "build" if m.mtime >= BUILD_TIME else int(m.mtime)
            entries[path] = e
    for path, source in links:
        if source in entries:
            target = dict(entries[source])
            target["path"] = path
            entries[path] = target
    groups: dict[str, list[str]] = {}
    for path, source in links:
        root = source
        groups.setdefault(root, [root]).append(path)
    for members in groups.values():
        first = sorted(members)[0]
        for p in members:
            if p in entries:
                entries[p]["hardlinks"] = first
    return [entries[p] for p in sorted(entries)]


def describe_image(config: dict, layers: Iterable[Callable[[], IO[bytes]]], base_layers: int,
                   base_history: int) -> dict:
    section = config.get("config") or {}
    history = config.get("history") or []
    opened = list(layers)[base_layers:]
    out_layers = []
    for opener in opened:
        with opener() as f:
            out_layers.append(describe_layer(f))
    return {
        "config": {k: section.get(k) for k in CONFIG_KEYS if section.get(k) not in (None, [], {}, "")},
        "history": ["empty" if h.get("empty_layer") else "layer" for h in history[base_history:]],
        "layers": out_layers,
    }


def comparable(result: dict) -> dict:
    """A case's result as compared: N7 applied to the run."""
    run = result.get("run")
    if not run or not isinstance(run.get("stderr"), str):
        return result
    if run["stderr"].startswith(("docker: ", "pybuild: ")):
        run = {**run, "stderr": "(the runtime refused to start the container)"}
    return {**result, "run": run}


def differences(expected: dict, actual: dict, where: str = "", names: tuple[str, str] = ("BuildKit", "pybuild")) -> list[str]:
    """Readable differences between two descriptions (golden first), each side called by `names`."""
    a, b = names
    out: list[str] = []
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k in sorted(set(expected) | set(actual)):
            if k not in actual:
                out.append(f"{where}/{k}: missing in {b} ({a}: {_short(expected[k])})")
            elif k not in expected:
                out.append(f"{where}/{k}: only in {b}: {_short(actual[k])}")
            else:
                out += differences(expected[k], actual[k], f"{where}/{k}", names)
    elif where.endswith("/layers") and isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            out.append(f"{where}: {a} has {len(expected)} layers, {b} {len(actual)}")
        for i, (want, got) in enumerate(zip(expected, actual)):
            ep, ap = {x["path"]: x for x in want}, {x["path"]: x for x in got}
            for p in sorted(set(ep) | set(ap)):
                if p not in ap:
                    out.append(f"{where}[{i}] {p}: missing in {b} ({a}: {_short(ep[p])})")
                elif p not in ep:
                    out.append(f"{where}[{i}] {p}: only in {b}: {_short(ap[p])}")
                elif ep[p] != ap[p]:
                    out.append(f"{where}[{i}] {p}: {a} {_short(ep[p])} != {b} {_short(ap[p])}")
    elif expected != actual:
        out.append(f"{where}: {a} {_short(expected)} != {b} {_short(actual)}")
    return out


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."
