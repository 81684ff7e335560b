"""RUN: the command runs in a sandbox whose rootfs is an overlay of the parent's layers; the
overlay's upperdir becomes the new layer.

The overlay is mounted in a forked child that first enters a private mount namespace, so the mount
vanishes with that child whatever happens (even kill -9) and the build process's own view of the
mounts never changes. Output streams back line by line as `log` events while the command runs.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import stat

from ..cachekey import KeyParts
from ..build import PROXY_ARGS

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _runtime():
    """The runtime wing's sandbox, imported only when a RUN step actually runs (start-up cost)."""
    from runtime.mounts import mount_overlay, private_mount_namespace
    from runtime.sandbox import SandboxSpec, etc_mount_stubs, spawn

    return SandboxSpec, spawn, mount_overlay, private_mount_namespace, etc_mount_stubs


_ONLY_HEREDOCS = re.compile(r"""\s*(\d*<<-?\s*(["']?)[^\s"'<>|&;]+\2\s*)+""")


def argv_of(state, ins) -> list[str]:
    """The command as BuildKit runs it. Heredocs: `RUN <<EOF` alone runs the body as a script (with
    its #! interpreter, else the shell); otherwise the shell gets the line and the bodies as they
    were written, so it does the redirections, `<<-` tab stripping and quoting itself."""
    if ins.is_json:
        return list(ins.command)
    heredocs = getattr(ins, "heredocs", ())
    if not heredocs:
        return [*state.shell, ins.command]
    if _ONLY_HEREDOCS.fullmatch(ins.command):
        body = heredocs[0].text
        if body.startswith("#!"):
            interpreter = body[2:].split("\n", 1)[0].split()
            return [*interpreter, "-c" if interpreter[-1].endswith("sh") else "/dev/stdin"] + \
                ([body] if interpreter[-1].endswith("sh") else [])
        return [*state.shell, body]
    script = ins.command + "\n" + "".join(
        h.content + ("" if h.content.endswith("\n") or not h.content else "\n") + h.name + "\n" for h in heredocs)
    return [*state.shell, script]


def stdin_of(ins) -> bytes | None:
    """A `#!` heredoc run by a non-shell interpreter reads its script from stdin (/dev/stdin)."""
    heredocs = getattr(ins, "heredocs", ())
    if ins.is_json or not heredocs or not _ONLY_HEREDOCS.fullmatch(ins.command):
        return None
    body = heredocs[0].text
    if body.startswith("#!") and not body[2:].split("\n", 1)[0].split()[-1].endswith("sh"):
        return body.encode()
    return None


def apply(build, state, ins):
    args = {k: v for k, v in state.args}
    env = {**args, **state.env}
    env.setdefault("PATH", DEFAULT_PATH)
    argv = argv_of(state, ins)
    keyed = tuple(sorted((k, v) for k, v in args.items() if k not in PROXY_ARGS))
    bodies = "".join(f"\n<<{h.name}\n{h.content}" for h in getattr(ins, "heredocs", ()))
    from .. import runmounts

    mounts = [runmounts.parse(build.expand(state, spec), build.where(ins))
              for spec in getattr(ins, "mounts", ())]
    keyed += tuple(runmounts.key_part(build, state, m) for m in mounts)
    parts = KeyParts(state.key, ins.original.strip() + bodies, keyed)
    network = _network(ins.network, build.opts.network, build.where(ins))

    def make():
        from ..mergedview import layer_of_upper

        with build.store.work_dir("run") as scratch:
            upper, work, merged = (os.path.join(scratch, n) for n in ("upper", "work", "merged"))
            for d in (upper, work, merged):
                os.mkdir(d, 0o755)
            lowers = build.store.layer_dirs(state.image.diff_ids)
            if not lowers:
                lowers = [os.path.join(scratch, "empty")]
                os.mkdir(lowers[0], 0o755)
            cfg = state.image.config_section
            extra = [runmounts.prepare(build, state, m, scratch) for m in mounts]
            code, output = _run_in_overlay(lowers, upper, work, merged, argv, env,
                                           cfg.get("User") or "", cfg.get("WorkingDir") or "/", network,
                                           explain=build.opts.explain, stdin=stdin_of(ins), mounts=extra,
                                           on_line=lambda text: build.progress(
                                               {"kind": "log", "line": ins.span.line, "text": text}))
            if code != 0:
                from ..build import BuildError

                tail = "\n".join(output.splitlines()[-5:])
                raise BuildError(f"{build.where(ins)}: RUN {shlex.join(argv[-1:])} failed with exit code {code}"
                                 + (f"; last output:\n{tail}" if tail else ""),
                                 hint="fix the command; the steps before it are cached")
            return layer_of_upper(build, upper)

    return build.layer(state, ins, parts, make, shlex.join(argv))


# RUN --network / build --network, as BuildKit names them -> the sandbox's mode. "default" is what
# BuildKit and buildah give a build: its own network namespace with outbound access through a
# userspace stack (runtime/slirp.py), so the host's loopback services, abstract unix sockets and
# interfaces are out of reach. RUN --network=default means the build's --network.
NETWORKS = {"default": "slirp4netns", "host": "host", "none": "none"}


def _network(step: str | None, build: str | None, where: str) -> str:
    chosen = step if step and step != "default" else (build or "default")
    if chosen not in NETWORKS:
        from ..build import BuildError

        raise BuildError(f"{where}: RUN --network={chosen}: unknown network mode", hint="use default, host or none")
    return NETWORKS[chosen]


def _run_in_overlay(lowers, upper, work, merged, argv, env, user, workdir, network,
                    explain: bool = False, stdin: bytes | None = None,
                    on_line=lambda line: None, mounts=()) -> tuple[int, str]:
    """Run in a forked child's private overlay; each output line goes to `on_line` as it comes.
    Returns (exit code, the last lines of output) for the error message."""
    SandboxSpec, spawn, mount_overlay, private_mount_namespace, etc_mount_stubs = _runtime()
    r, w = os.pipe()
    builder = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        # --explain: each kernel step goes into the step's output, before what the command prints
        show = (lambda line: os.write(w, f"+ {line}\n".encode())) if explain else None
        try:
            # The build dies (any signal, even SIGKILL): SIGTERM here, and the sandbox's wait()
            # kills the command, stops its network stack and removes its cgroups before going.
            from runtime import linux

            linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != builder:  # it died before the prctl
                os._exit(125)
            private_mount_namespace(show)
            mount_overlay(lowers, upper, work, merged, show)
            from cache.fsutil import secure_join

            os.makedirs(secure_join(merged, workdir), exist_ok=True)
            if stdin is None:
                devnull = os.open(os.devnull, os.O_RDONLY)
            else:  # a script for the interpreter: a memory file, read from the start
                devnull = os.memfd_create("run-stdin")
                os.write(devnull, stdin)
                os.lseek(devnull, 0, os.SEEK_SET)
            spec = SandboxSpec(rootfs=merged, argv=argv, env=env, user=user, workdir=workdir,
                               network=network, stdin=devnull, stdout=w, stderr=w, explain=show,
                               mounts=list(mounts), etc_mounts="build")
            stubs = etc_mount_stubs(merged, spec)
            result = spawn(spec).wait()
            _remove_stubs(stubs)
            os._exit(min(result.exit_code, 255))
        except BaseException as err:  # noqa: BLE001 - a failed set-up never goes on
            try:
                os.write(w, f"pybuild: RUN set-up failed: {err}\n".encode())
            finally:  # (the parent may be gone: a broken pipe must not let the child go on)
                os._exit(125)
    os.close(w)
    tail: list[str] = []
    pending = b""
    with os.fdopen(r, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                _emit(raw, on_line, tail)
    if pending:
        _emit(pending, on_line, tail)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), "\n".join(tail)


def _remove_stubs(stubs: list[str]) -> None:
    """Take the mount points the sandbox made for /etc/hosts and resolv.conf out of the layer, as
    BuildKit does: they were not in the image and the command could not write them (read-only
    binds). Unlinked through the merged view, whose binds died with the sandbox's mount namespace:
    overlayfs drops an upper-only file without a whiteout, and /etc stays copied up with its new
    mtime, as in BuildKit's layer. Only an empty regular file goes: anything else is not our stub."""
    for path in stubs:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(path)


def _emit(raw: bytes, on_line, tail: list[str], keep: int = 50) -> None:
    line = raw.decode("utf-8", "replace").rstrip("\r")
    on_line(line)
    tail.append(line)
    if len(tail) > keep:
        del tail[0]
