"""Generated conformance cases: random Dockerfiles and contexts, made from a fixed seed.

Case i is drawn from its own `random.Random(SEED + i)`, so adding cases (a larger n) never changes
the earlier ones, and changing the generator changes every case's input hash (refresh the goldens).

Each case builds `FROM conformance-base` and runs 2..8 instructions drawn from COPY / ADD (files,
directories, wildcards, several sources, local tars), WORKDIR, USER, ENV, ARG (with expansion in later
instructions and build args), RUN (busybox commands that change the filesystem deterministically,
or nothing), LABEL, EXPOSE, sometimes after a first stage that a `COPY --from` reads. The default
command prints the final tree under every top-level directory a step touched (mode, owner, size,
link count and symlink target of each entry; md5 of each file), `id`, `pwd` and the ENV values.

Nothing may depend on the clock or on randomness at build or run time: no `date`, no `$RANDOM`,
mtimes only through `touch -d @EPOCH`, directory sizes never printed (they depend on the file
system). The generator is shaped by what BuildKit accepts (most cases must build), never by what
pybuild does: a divergence is the point of a case.
"""
from __future__ import annotations

import json
import random

from model import BASE_REF, EPOCH, Case, D, F, H, L, Tar

SEED = 0x5EED_C0DE

# --------------------------------------------------------------------------------------- contexts

NAMES = ["a.txt", "b", "c.conf", "read me.md", "ünïcødé.txt", "日本語.txt", "x.y.z", ".hidden",
         "..dots", "data.bin", "run.sh", "UPPER.TXT", "a.jar", "b.jar", "notes", "with space",
         "v1.2.3", "lib.so.1", "empty", "ß", "z"]
DIRNAMES = ["src", "lib", "conf", "nested", "dir with space", "ünï", ".config", "a.d", "deep", "build",
            "pkg", "x"]
CONTENTS = ["hello\n", "", "same\n", "#!/bin/sh\necho run\n", "no newline", "ünïcødé ✓\n",
            "line1\nline2\nline3\n", b"\x00\x01\x02binary\xff\xfe", "x" * 5000 + "\n", "key=value\n"]
FILE_MODES = [0o644, 0o644, 0o644, 0o600, 0o755, 0o755, 0o700, 0o444, 0o640, 0o4755, 0o2755, 0o666, 0o400]
DIR_MODES = [0o755, 0o755, 0o700, 0o750, 0o777, 0o1777, 0o2775, 0o711, 0o555]
IDS = [0, 0, 0, 0, 1000, 50, 4242, 65534]
TAR_NAMES = {"": ["a.tar", "files.tar", "blob", "x.tar"],
             "gz": ["b.tar.gz", "c.tgz", "pkg.tar.gz", "weird.bin"],
             "bz2": ["d.tar.bz2", "e.tbz2"],
             "xz": ["f.tar.xz", "g.txz"]}


class Tree:
    """A context (or tar) being drawn: an ordered dict of entries plus what is where."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.entries: dict = {}
        self.dirs: set[str] = set()          # every directory, explicit or implied
        self.files: list[str] = []           # regular files (F), hardlink sources
        self.kinds: dict[str, str] = {}      # path -> file / dir / link / tar

    def free(self, path: str) -> bool:
        if path in self.kinds or path in self.dirs:
            return False
        parts = path.split("/")
        for i in range(1, len(parts)):
            if self.kinds.get("/".join(parts[:i]), "dir") != "dir":
                return False
        return True

    def _note_parents(self, path: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            self.dirs.add("/".join(parts[:i]))

    def new_path(self, names=NAMES) -> str:
        rng = self.rng
        for _ in range(50):
            r = rng.random()
            if r < 0.45 or not self.dirs:
                parent = ""
            elif r < 0.85:
                parent = rng.choice(sorted(self.dirs))
            else:
                parent = "/".join(rng.choice(DIRNAMES) for _ in range(rng.randint(2, 5)))
            if r > 0.97:
                parent = "/".join(["d"] * rng.randint(6, 12))      # deep nesting
            path = f"{parent}/{rng.choice(names)}" if parent else rng.choice(names)
            if self.free(path):
                return path
        return f"fallback{len(self.entries)}"

    def add(self, path: str, entry, kind: str) -> None:
        self._note_parents(path)
        self.entries[path] = entry
        self.kinds[path] = kind
        if kind == "dir":
            self.dirs.add(path)
        if kind == "file":
            self.files.append(path)

    def rand_file(self) -> F:
        rng = self.rng
        mode = rng.choice(FILE_MODES)
        if rng.random() < 0.6:
            return F(rng.choice(CONTENTS), mode)
        return F(rng.choice(CONTENTS), mode, rng.choice(IDS), rng.choice(IDS))

    def fill(self, n: int, allow_tar: bool = True) -> None:
        rng = self.rng
        for _ in range(n):
            kind = rng.choices(["file", "dir", "link", "hard", "tar"],
                               [55, 15, 10, 7, 13 if allow_tar else 0])[0]
            if kind == "dir":
                path = self.new_path(DIRNAMES)
                self.add(path, D(rng.choice(DIR_MODES), rng.choice(IDS), rng.choice(IDS)), "dir")
            elif kind == "link":
                path = self.new_path()
                here = path.rsplit("/", 1)[0] if "/" in path else ""
                others = sorted(p for p in list(self.kinds) + sorted(self.dirs) if p != path)
                r = rng.random()
                if others and r < 0.6:
                    other = rng.choice(others)
                    target = _relative(other, here)
                elif r < 0.8:
                    target = rng.choice(["/etc/passwd", "/tmp", "/opt/data", "/usr/bin"])
                else:
                    target = rng.choice(["nowhere", "../outside", "./self/loop"])
                self.add(path, L(target), "link")
            elif kind == "hard" and self.files:
                source = rng.choice(self.files)
                path = self.new_path()
                self.add(path, H(source), "hard")
            elif kind == "tar" and allow_tar:
                comp = rng.choice(["", "", "gz", "gz", "bz2", "xz"])
                name = rng.choice(TAR_NAMES[comp])
                path = name if rng.random() < 0.8 else f"archives/{name}"
                if not self.free(path):
                    continue
                members = Tree(rng)
                members.fill(rng.randint(1, 6), allow_tar=False)
                self.add(path, Tar(members.entries, comp), "tar")
            else:
                self.add(self.new_path(), self.rand_file(), "file")

    def top(self) -> list[str]:
        """Top-level names."""
        return sorted({p.split("/", 1)[0] for p in list(self.kinds) + sorted(self.dirs)})


def _relative(target: str, here: str) -> str:
    up = len(here.split("/")) if here else 0
    return "../" * up + target if up else target


# --------------------------------------------------------------------------------------- Dockerfile

USERS = {  # USER value -> (uid, gid)
    "user": (1000, 1000), "1000": (1000, 1000), "1000:50": (1000, 50), "user:staff": (1000, 50),
    "nobody": (65534, 65534), "65534": (65534, 65534), "4242": (4242, 4242), "4242:4242": (4242, 4242),
    "root": (0, 0), "0": (0, 0), "0:50": (0, 50),
}
CHOWNS = ["user", "user:staff", "1000", "1000:50", "0:50", "nobody", "4242:4242", "root:staff", "65534:0",
          "user:1000", "33"]
CHMODS = ["600", "755", "0640", "4755", "700", "444", "1777", "0"]
NEW_DIRS = ["/app", "/dst", "/work/dir", "/srv/new", "/a/b/c", "/var/lib/thing", "/with space", "/ünï",
            "/opt/tool"]
EXISTING_DIRS = ["/tmp", "/home/user", "/opt/data", "/srv", "/usr/bin", "/var", "/opt", "/root"]
ENV_NAMES = ["D", "APP_HOME", "GREETING", "MODE", "OWNER", "NAME", "PORT", "X_1"]
WORDS = ["hello", "two words", "ünï", "a=b", "x:y", "1.0", "-dash", "quote'd"]


def _sq(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def _join(d: str, rel: str) -> str:
    if rel.startswith("/"):
        return rel
    return (d.rstrip("/") + "/" + rel) if d != "/" else "/" + rel


def _top(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return "/" + parts[0] if parts else "/"


class Stage:
    def __init__(self):
        self.env: dict[str, str] = {}        # ENV names -> value (kept in the image)
        self.args: dict[str, str] = {}      # ARG names -> effective value
        self.user = "root"
        self.uid, self.gid = 0, 0
        self.workdir = "/"
        self.made: list[tuple[str, str, int]] = []     # (abs path, file/dir, owner uid) a step made
        self.touched: set[str] = set()       # top-level directories a step touched
        self.removed: set[str] = set()       # base directories a RUN removed


class Gen:
    def __init__(self, rng: random.Random, name: str):
        self.rng = rng
        self.name = name
        self.ctx = Tree(rng)
        self.build_args: list[tuple[str, str]] = []
        self.lines: list[str] = []
        self.counter = 0
        self.rules: list[str] = []

    # ---- helpers
    def fresh(self, stem: str = "n") -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def var_form(self, st: Stage, path: str) -> str:
        """`path`, sometimes spelt with a variable whose value is a prefix of it."""
        rng = self.rng
        if rng.random() < 0.35:
            known = {**st.args, **st.env}
            for k in sorted(known):
                v = known[k]
                if v.startswith("/") and len(v) > 1 and (path == v or path.startswith(v + "/")):
                    rest = path[len(v):]
                    return rng.choice([f"${k}", f"${{{k}}}", f"${{{k}:-/nope}}"]) + rest
            if rng.random() < 0.2 and path.startswith("/"):
                return "${UNSET_VAR:-" + _top(path) + "}" + path[len(_top(path)):]
        return path

    def fmt(self, instr: str, flags: list[str], args: list[str]) -> str:
        if any(" " in a or '"' in a for a in args) or self.rng.random() < 0.1:
            body = json.dumps(args, ensure_ascii=False)
        else:
            body = " ".join(args)
        return " ".join([instr, *flags, body])

    def writable_dirs(self, st: Stage) -> list[str]:
        made = [p for p, k, u in st.made if k == "dir"]
        if st.uid == 0:
            base = ["/tmp", "/srv", "/opt/data", "/home/user", "/var", "/usr/bin", "/root", "/opt"]
            return [b for b in base if not any(b == r or b.startswith(r + "/") for r in st.removed)] + made
        out = ["/tmp"]
        if st.uid == 1000:
            out += ["/home/user", "/opt/data"]
        out += [p for p, k, u in st.made if k == "dir" and u == st.uid]
        return out

    # ---- instructions
    def dest_dir(self, st: Stage) -> tuple[str, str]:
        """(as written, absolute) for a destination directory (new or existing)."""
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            d = rng.choice(NEW_DIRS)
        elif r < 0.7:
            d = rng.choice(EXISTING_DIRS[:5] if rng.random() < 0.9 else EXISTING_DIRS)
        elif r < 0.85 and st.made:
            d = rng.choice([p for p, k, _ in st.made if k == "dir"] or [rng.choice(NEW_DIRS)])
        else:
            rel = rng.choice(["rel", "sub/dir", "out", "."])
            if rel == "." and st.workdir == "/":
                rel = "here"
            return rel, _join(st.workdir, rel)
        if rng.random() < 0.3:
            d = f"{d}/{self.fresh('in')}"
        return self.var_form(st, d), d

    def copy(self, st: Stage, add: bool = False, from_stage: Stage | None = None, from_name: str = "") -> None:
        rng = self.rng
        ctx = self.ctx
        flags = []
        if from_stage is not None:
            flags.append(f"--from={from_name}")
        owner = 0
        if rng.random() < 0.3:
            ch = rng.choice(CHOWNS)
            if "OWNER" in st.env and rng.random() < 0.3:
                ch = "$OWNER"
            flags.append(f"--chown={ch}")
            owner = USERS.get(ch.split(":")[0], (int(ch.split(":")[0]) if ch[0].isdigit() else 0, 0))[0]
        if not add and rng.random() < 0.15:
            flags.append(f"--chmod={rng.choice(CHMODS)}")

        # sources
        if from_stage is not None:
            made = from_stage.made or [("/etc/passwd", "file", 0)]
            srcs = [rng.choice(made)[0]]
            kind = "dir" if any(p == srcs[0] and k == "dir" for p, k, _ in made) else "file"
            if rng.random() < 0.2:
                srcs = [_top(srcs[0]) + "/*"] if _top(srcs[0]) != srcs[0] else srcs
                kind = "many"
        else:
            pool = sorted(ctx.kinds) + sorted(ctx.dirs)
            if add:
                tars = [p for p, k in ctx.kinds.items() if k == "tar"]
                files = [p for p, k in ctx.kinds.items() if k == "file"]
                choice = tars if (tars and rng.random() < 0.8) else (files or pool)
                srcs, kind = [rng.choice(choice)], "tar" if choice is tars else "file"
                if len(choice) > 1 and rng.random() < 0.15:
                    srcs = rng.sample(choice, 2)
                    kind = "many"
            else:
                r = rng.random()
                if r < 0.45:
                    srcs = [rng.choice(pool)]
                    if ctx.kinds.get(srcs[0]) == "link" and rng.random() < 0.7:
                        srcs = [rng.choice(pool)]
                    kind = "dir" if srcs[0] in ctx.dirs else "file"
                elif r < 0.7:
                    pick = rng.choice(pool)
                    head, _, base = pick.rpartition("/")
                    if "." in base[1:] and rng.random() < 0.5:
                        pat = "*" + base[base.rindex("."):]
                    elif len(base) > 1 and rng.random() < 0.5:
                        pat = base[0] + "*"
                    elif rng.random() < 0.3:
                        pat = "?" + base[1:]
                    else:
                        pat = "*"
                    srcs = [f"{head}/{pat}" if head else pat]
                    kind = "many"
                elif r < 0.9 and len(pool) > 1:
                    srcs = rng.sample(pool, rng.randint(2, min(4, len(pool))))
                    kind = "many"
                else:
                    srcs = ["."]
                    kind = "dir"

        # destination
        r = rng.random()
        if kind in ("file",) and r < 0.4:
            d, dabs = self.dest_dir(st)
            base = rng.choice(["renamed", "f.txt", "new name", "ünï.bin", self.fresh("file")])
            dest, destabs = f"{d.rstrip('/')}/{base}" if d != "/" else f"/{base}", _join(dabs, base)
            if rng.random() < 0.1:
                dest, destabs = "/opt/data/keep.txt", "/opt/data/keep.txt"
            st.made.append((destabs, "file", owner))
        else:
            dest, destabs = self.dest_dir(st)
            slash = kind == "many" and rng.random() < 0.92 or rng.random() < 0.5
            if slash and not dest.endswith("/"):
                dest += "/"
            if kind == "dir" or kind == "tar" or kind == "many" or slash:
                st.made.append((destabs, "dir", owner))
            else:
                st.made.append((destabs, "file", owner))
        st.touched.add(_top(destabs))
        self.lines.append(self.fmt("ADD" if add else "COPY", flags, srcs + [dest]))

    def workdir(self, st: Stage) -> None:
        rng = self.rng
        if st.uid == 0:
            choices = NEW_DIRS + ["/tmp/wd", "/home/user/proj", "/srv", "/opt/data/sub"]
        else:
            choices = ["/tmp/wd", "/tmp", "/app", "/srv/w", "/work"]
            if st.uid == 1000:
                choices += ["/home/user/proj", "/opt/data/sub", "/home/user"]
        r = rng.random()
        if r < 0.6:
            path = rng.choice(choices)
            written = self.var_form(st, path)
        elif r < 0.9:
            written = rng.choice(["sub", "a/b", "rel dir", self.fresh("w")])
            path = _join(st.workdir, written)
        else:
            written = ".."
            path = st.workdir.rsplit("/", 1)[0] or "/"
        st.workdir = path
        st.touched.add(_top(path))
        if path != "/":
            st.made.append((path, "dir", st.uid))
        self.lines.append(f"WORKDIR {written}")

    def user(self, st: Stage) -> None:
        u = self.rng.choice(sorted(USERS))
        st.user = u
        st.uid, st.gid = USERS[u]
        self.lines.append(f"USER {u}")
        # a workdir the user cannot enter would make the run fail with the runtime's own message
        if st.uid not in (0,) and (st.workdir.startswith("/root") or
                                   (st.uid != 1000 and st.workdir.startswith(("/home/user", "/opt/data")))):
            st.workdir = "/tmp"
            self.lines.append("WORKDIR /tmp")

    def env(self, st: Stage) -> None:
        rng = self.rng
        n = rng.choice([1, 1, 1, 2, 3])
        pairs = []
        for _ in range(n):
            k = rng.choice(ENV_NAMES)
            r = rng.random()
            if k in ("D", "APP_HOME"):
                v = rng.choice(NEW_DIRS[:6] + ["/srv/data"])
            elif k == "OWNER":
                v = rng.choice(CHOWNS[:6])
            elif k == "PORT":
                v = rng.choice(["80", "8080", "53/udp"])
            elif r < 0.3 and (st.env or st.args):
                ref = rng.choice(sorted({**st.args, **st.env}))
                v = rng.choice([f"${ref}/sub", f"${{{ref}}}-x", f"${{{ref}:+set}}", f"${{NOPE:-{ref}}}"])
                pairs.append((k, v))
                st.env[k] = _expand(v, {**st.args, **st.env})
                continue
            else:
                v = rng.choice(WORDS)
            st.env[k] = v
            pairs.append((k, v))
        if len(pairs) == 1 and rng.random() < 0.2 and " " not in pairs[0][1] and "'" not in pairs[0][1]:
            self.lines.append(f"ENV {pairs[0][0]} {pairs[0][1]}")
        else:
            self.lines.append("ENV " + " ".join(f"{k}={_dq(v)}" for k, v in pairs))

    def arg(self, st: Stage) -> None:
        rng = self.rng
        k = rng.choice(["D", "VERSION", "TARGET_DIR", "FLAVOR", "GREETING"])
        default = rng.choice(["/app", "/srv/x", "1.0", "plain", None]) if k != "TARGET_DIR" else "/dst"
        value = default or ""
        if rng.random() < 0.4:
            value = rng.choice(["/opt/tool", "from-cli", "2.0", "/work/dir"]) if k != "TARGET_DIR" else "/opt/tool"
            self.build_args.append((k, value))
        st.args[k] = value
        self.lines.append(f"ARG {k}" + (f"={default}" if default is not None else ""))

    def run(self, st: Stage) -> None:
        rng = self.rng
        cmds = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            cmds.append(self.run_cmd(st))
        cmd = " && ".join(cmds)
        if rng.random() < 0.1:
            self.lines.append("RUN " + json.dumps(["sh", "-c", cmd], ensure_ascii=False))
        else:
            self.lines.append(f"RUN {cmd}")

    def run_cmd(self, st: Stage) -> str:
        rng = self.rng
        where = self.writable_dirs(st)
        mine = [(p, k) for p, k, u in st.made if u == st.uid or st.uid == 0]
        mine = [(p, k) for p, k in mine if st.uid == 0 or p.startswith(("/tmp/", "/home/user/"))]
        kind = rng.choices(["mkdir", "echo", "append", "rm", "chmod", "chown", "symlink", "hardlink", "touch",
                            "mv", "nothing", "envecho", "rmbase"],
                           [10, 14, 4, 8, 7, 5, 6, 4, 6, 4, 10, 5, 3 if st.uid == 0 else 0])[0]
        base = rng.choice(where + NEW_DIRS if kind == "mkdir" and st.uid == 0 else where)
        new = _join(base, rng.choice([self.fresh("r"), self.fresh("dir with space "), self.fresh("ü")]))
        files = [p for p, k in mine if k == "file"]
        if kind in ("append", "hardlink") and not files:
            kind = "echo"
        if kind in ("chmod", "chown", "touch"):
            mine = [(p, k) for p, k in mine if k != "link"]
        if kind in ("rm", "chmod", "chown", "mv", "touch") and not mine:
            kind = "mkdir"
        if kind == "chown" and st.uid != 0:
            kind = "chmod"
        if kind == "mkdir":
            st.made.append((new, "dir", st.uid))
            st.touched.add(_top(new))
            sub = rng.choice(["", "/x", "/x/y/z"])
            if sub:
                st.made.append((new + sub, "dir", st.uid))
            return f"mkdir -p {_sq(new + sub)}"
        if kind == "echo":
            st.made.append((new, "file", st.uid))
            st.touched.add(_top(new))
            return f"echo {_sq(rng.choice(WORDS))} > {_sq(new)}"
        if kind == "append":
            p = rng.choice(files)
            return f"printf 'more\\n' >> {_sq(p)}"
        if kind == "rm":
            p, _ = rng.choice(mine)
            st.made = [m for m in st.made if m[0] != p and not m[0].startswith(p + "/")]
            return f"rm -rf {_sq(p)}"
        if kind == "chmod":
            p, _ = rng.choice(mine)
            return f"chmod {rng.choice(['700', '644', '4755', 'g+w', 'o-r', '1777', '0'])} {_sq(p)}"
        if kind == "chown":
            p, k = rng.choice(mine)
            rec = "-R " if k == "dir" and rng.random() < 0.5 else ""
            return f"chown {rec}{rng.choice(['1000:50', 'nobody', 'user:staff', '4242', '0:0'])} {_sq(p)}"
        if kind == "symlink":
            target = rng.choice([p for p, _ in mine] + ["/etc/passwd", "relative/target", "../up"])
            st.made.append((new, "link", st.uid))
            st.touched.add(_top(new))
            return f"ln -s {_sq(target)} {_sq(new)}"
        if kind == "hardlink":
            p = rng.choice(files)
            same_dir = p.rsplit("/", 1)[0] or "/"
            if st.uid != 0 or rng.random() < 0.5:
                new = _join(same_dir, self.fresh("hard"))
            st.made.append((new, "file", st.uid))
            st.touched.add(_top(new))
            return f"ln {_sq(p)} {_sq(new)}"
        if kind == "touch":
            if rng.random() < 0.5:
                p, _ = rng.choice(mine)
            else:
                p = new
                st.made.append((new, "file", st.uid))
                st.touched.add(_top(new))
            return f"touch -d @{EPOCH} {_sq(p)}"
        if kind == "mv":
            p, k = rng.choice(mine)
            if new.startswith(p + "/"):
                new = _join("/tmp" if st.uid else "/srv", self.fresh("moved"))
            st.made = [m for m in st.made if m[0] != p and not m[0].startswith(p + "/")]
            st.made.append((new, k, st.uid))
            st.touched.add(_top(new))
            return f"mv {_sq(p)} {_sq(new)}"
        if kind == "envecho":
            known = sorted({**st.args, **st.env}) or ["HOME"]
            k = rng.choice(known)
            st.made.append((new, "file", st.uid))
            st.touched.add(_top(new))
            return f'echo "${k}" > {_sq(new)}'
        if kind == "rmbase":
            p = rng.choice(["/opt/data/keep.txt", "/srv", "/usr/bin", "/home/user", "/var"])
            st.touched.add(_top(p))
            st.removed.add(p)
            st.made = [m for m in st.made if m[0] != p and not m[0].startswith(p + "/")]
            return f"rm -rf {p}"
        return rng.choice(["true", "echo hello", "test -e /etc/passwd", "ls / > /dev/null",
                           "cat /etc/group > /dev/null", "mkdir -p /tmp", ":"])

    def label(self, st: Stage) -> None:
        rng = self.rng
        pairs = []
        for _ in range(rng.randint(1, 3)):
            k = rng.choice(["a", "org.opencontainers.image.title", "key with space", "version", "x.y", "empty"])
            v = rng.choice(["b", "two words", "ünï", "", "1.0"])
            if rng.random() < 0.3 and (st.env or st.args):
                v = "$" + rng.choice(sorted({**st.env, **st.args}))
            pairs.append(f"{_dq(k) if ' ' in k else k}={_dq(v)}")
        self.lines.append("LABEL " + " ".join(pairs))

    def expose(self, st: Stage) -> None:
        rng = self.rng
        ports = rng.choice(["80", "8080/tcp", "53/udp", "80 443", "9000/tcp 9000/udp"])
        if "PORT" in st.env and rng.random() < 0.5:
            ports = "$PORT"
        self.lines.append(f"EXPOSE {ports}")

    def step(self, st: Stage, copy_only: bool = False) -> None:
        rng = self.rng
        if copy_only:
            kind = rng.choice(["copy", "copy", "run", "run", "add"])
        else:
            kind = rng.choices(["copy", "add", "workdir", "user", "env", "arg", "run", "label", "expose"],
                               [24, 8, 9, 8, 8, 5, 26, 5, 4])[0]
        if kind in ("copy", "add") and not self.ctx.kinds:
            kind = "run"
        getattr(self, kind)(st) if kind != "add" else self.copy(st, add=True)

    # ---- the case
    def build(self) -> Case:
        rng = self.rng
        self.ctx.fill(rng.randint(1, 15))
        first = None
        if rng.random() < 0.18:
            first = Stage()
            name = rng.choice(["build", "Builder", "stage0"])
            self.lines.append(f"FROM {BASE_REF} AS {name}")
            for _ in range(rng.randint(1, 3)):
                self.step(first, copy_only=True)
            self.lines.append("")
        st = Stage()
        self.lines.append(f"FROM {BASE_REF}")
        n = rng.randint(2, 8)
        copy_from_at = rng.randrange(n) if first is not None else -1
        for i in range(n):
            if i == copy_from_at:
                self.copy(st, from_stage=first, from_name=rng.choice([name, "0"]))
            else:
                self.step(st)
        self.lines.append("CMD " + json.dumps(["sh", "-c", _script(st)], ensure_ascii=False))
        return Case(self.name, "\n".join(self.lines) + "\n", self.ctx.entries,
                    build_args=tuple(self.build_args),
                    rule="generated: " + ", ".join(l.split(" ", 1)[0] for l in self.lines if l and not l.startswith("CMD")))


def _dq(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _expand(v: str, env: dict) -> str:
    """The few substitution forms ENV values use here."""
    import re

    def sub(m):
        name, op, word = m.group(1) or m.group(4), m.group(2), m.group(3)
        val = env.get(name)
        if op == ":-":
            return val if val else word
        if op == ":+":
            return word if val else ""
        return val or ""
    return re.sub(r"\$\{(\w+)(?:(:[-+])([^}]*))?\}|\$(\w+)", sub, v)


BASE_WATCH = ["/home", "/opt", "/root", "/srv", "/tmp", "/usr", "/var"]


def _script(st: Stage) -> str:
    watch = sorted(set(BASE_WATCH) | {t for t in st.touched if t not in ("/", "/proc", "/sys", "/dev", "/bin")})
    quoted = " ".join(_sq(w) for w in watch)
    envs = "; ".join(f'echo "{k}=${{{k}-unset}}"' for k in sorted(st.env) + sorted(set(st.args) - set(st.env)))
    script = (f"for p in {quoted}; do "
              "find \"$p\" -type d -exec stat -c 'dir %a %u:%g %n' {} \\; ; "
              "find \"$p\" ! -type d -exec stat -c '%F %a %h %u:%g %s %N' {} \\; ; "
              "find \"$p\" -type f -exec md5sum {} \\; ; "
              "done 2>&1 | sort; id; pwd")
    return script + (f"; {envs}" if envs else "")


def generated_cases(n: int) -> list[Case]:
    return [Gen(random.Random(SEED + i), f"gen-{i:03d}").build() for i in range(n)]
