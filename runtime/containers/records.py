"""Container records: ids and names as Docker's, config and state files written atomically."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace

from grammar.errors import PybuildError, UsageError

_ADJECTIVES = ("admiring", "brave", "clever", "dreamy", "eager", "festive", "gifted", "happy",
               "jolly", "keen", "lucid", "modest", "nifty", "optimistic", "quirky", "relaxed",
               "serene", "tender", "upbeat", "vibrant", "wizardly", "youthful", "zealous")
_SURNAMES = ("babbage", "curie", "dijkstra", "euler", "feynman", "goodall", "hopper", "knuth",
             "lamarr", "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon", "thompson",
             "turing", "wozniak", "yonath", "zuse")
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class ContainerNotFound(PybuildError):
    """No container has that name or id prefix."""


class ContainerConflict(PybuildError):
    """A name already in use, an ambiguous id prefix, or a verb that does not fit the state."""


@dataclass(frozen=True)
class RunConfig:
    """What `run` asked for: everything needed to start (and restart) the container."""
    image: str                       # as the user typed it
    image_id: str                    # sha256:... of the config
    diff_ids: tuple[str, ...]
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    user: str = ""
    workdir: str = "/"
    hostname: str = ""
    network: str = "private"
    publish: tuple[str, ...] = ()    # the -p specs, parsed again by the monitor
    volumes: tuple[str, ...] = ()    # HOST:CTR[:ro]
    tmpfs: tuple[str, ...] = ()
    init: bool = False
    tty: bool = False
    interactive: bool = False
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    seccomp: str | None = None       # --security-opt seccomp=: None Docker's default, "unconfined", or
                                     # the profile's JSON text (read once, as docker keeps it: exec's too)
    auto_remove: bool = False
    cgroup_parent: str | None = None
    explain: bool = False            # print each kernel step (to the attached CLI, else the log)

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        values = {k: (tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v)
                  for k, v in d.items() if k in known}
        return cls(**values)


@dataclass(frozen=True)
class State:
    status: str = "created"          # created | running | paused | exited | dead
    pid: int = 0                     # the container's PID 1, as the host sees it
    monitor_pid: int = 0
    monitor_start: int = 0           # /proc/<pid>/stat starttime: a recycled pid is not our monitor
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    ports: tuple[str, ...] = ()      # bound mappings, "IP:HOST->CTR/proto"
    cgroups: tuple[str, ...] = ()    # the sandbox's cgroup directories (runtime.cgroups.reopen)
    cap_mask: int | None = None      # the capabilities PID 1 was given (runtime.caps): exec's too

    @classmethod
    def from_json(cls, d: dict) -> "State":
        known = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    created: str
    config: RunConfig
    state: State = field(default_factory=State)

    @property
    def short_id(self) -> str:
        return self.id[:12]


def new_id() -> str:
    return os.urandom(32).hex()  # (not `secrets`: importing it costs ~6 ms of every command)


def _pick(words) -> str:
    return words[int.from_bytes(os.urandom(4), "big") % len(words)]


def random_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{_pick(_ADJECTIVES)}_{_pick(_SURNAMES)}"
        if name not in taken:
            return name
    return f"{_pick(_ADJECTIVES)}_{_pick(_SURNAMES)}{int.from_bytes(os.urandom(2), 'big') % 1000}"


def check_name(name: str) -> str:
    name = name.lstrip("/")
    if not name or not set(name) <= NAME_CHARS or not name[0].isalnum():
        raise UsageError(f"--name {name!r}: invalid container name",
                         hint="use [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    return name


def now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def write_json_atomic(path: str, obj: object) -> None:
    """temp + fsync + rename: a reader sees the old file or the new one, never half of one."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class Records:
    """The container directories under ROOT/containers."""

    def __init__(self, root: str):
        self.dir = os.path.join(root, "containers")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def path(self, cid: str, *parts: str) -> str:
        return os.path.join(self.dir, cid, *parts)

    def ids(self) -> list[str]:
        return sorted(d for d in os.listdir(self.dir) if len(d) == 64 and os.path.isfile(self.path(d, "config.json")))

    def load(self, cid: str) -> Container:
        d = read_json(self.path(cid, "config.json"))
        try:
            st = State.from_json(read_json(self.path(cid, "state.json")))
        except FileNotFoundError:
            st = State()
        return Container(id=cid, name=d["name"], created=d["created"], config=RunConfig.from_json(d["config"]), state=st)

    def all(self) -> list[Container]:
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being removed right now, or half-created by a killed command
        return sorted(out, key=lambda c: c.created, reverse=True)

    def create(self, config: RunConfig, name: str | None) -> Container:
        """Caller holds the containers lock: names stay unique."""
        taken = {c.name for c in self.all()}
        if name:
            name = check_name(name)
            if name in taken:
                other = next(c for c in self.all() if c.name == name)
                raise ContainerConflict(f"the container name {name!r} is already in use by container {other.short_id}",
                                        hint=f"remove it (`pybuild rm {name}`) or choose another --name")
        else:
            name = random_name(taken)
        c = Container(id=new_id(), name=name, created=now_iso(), config=config)
        os.makedirs(self.path(c.id), mode=0o700)
        for sub in ("upper", "work", "rootfs"):
            os.mkdir(self.path(c.id, sub), 0o755)
        write_json_atomic(self.path(c.id, "state.json"), asdict(c.state))
        write_json_atomic(self.path(c.id, "config.json"),
                          {"id": c.id, "name": c.name, "created": c.created, "config": asdict(config)})
        return c

    def save_state(self, cid: str, state: State) -> None:
        write_json_atomic(self.path(cid, "state.json"), asdict(state))

    def update_state(self, cid: str, **changes) -> State:
        st = replace(self.load(cid).state, **changes)
        self.save_state(cid, st)
        return st

    def find(self, ref: str) -> Container:
        """A name, a full id or a unique id prefix, as Docker accepts them."""
        ref = ref.lstrip("/")
        everything = self.all()
        for c in everything:
            if c.id == ref or c.name == ref:
                return c
        matches = [c for c in everything if ref and c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ContainerConflict(f"{ref!r} matches {len(matches)} containers", hint="give more of the id")
        raise ContainerNotFound(f"no such container: {ref}", hint="`pybuild ps -a` lists them")
