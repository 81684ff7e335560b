"""Our tini-like PID 1 for `run --init`.

It follows tini's loop (src/tini.c): block every catchable signal, start the child in its own
process group, then wait in `sigtimedwait` with a timeout; a signal that arrives is forwarded to
the child's process group (tini -g), SIGCHLD (or the timeout) reaps every zombie with WNOHANG.
When the child itself has exited, the init exits with its code, or 128+signal.

`run_init` is called in the sandbox's forked child after pivot_root, so it is Python code that is
already in memory: it opens no host file after it starts, and runs nothing the container could have
modified on the host's side. It never returns.
"""
from __future__ import annotations

import ctypes  # imported now: after pivot_root the host's stdlib is out of reach
import os
import signal
import sys
from typing import NoReturn

# Signals that must keep their default action in the init: they are about the process itself.
_NOT_FORWARDED = {signal.SIGFPE, signal.SIGILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT,
                  signal.SIGTRAP, signal.SIGSYS, signal.SIGTTIN, signal.SIGTTOU}
WAIT_TIMEOUT_S = 1.0
PR_SET_DUMPABLE = 4


def catchable_signals() -> set[signal.Signals]:
    return {s for s in signal.valid_signals() if isinstance(s, signal.Signals)
            and s not in (signal.SIGKILL, signal.SIGSTOP) and s not in _NOT_FORWARDED}


def exit_status(wait_status: int) -> int:
    """The code a shell would report: the child's code, or 128+signal."""
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status)
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return 1


def exec_status(err: OSError) -> int:
    """tini's convention: 127 when the command is not found, 126 when it cannot be executed."""
    return 127 if isinstance(err, FileNotFoundError) else 126


def _no_core_dumps_of_pid1() -> None:
    # A dumpable PID 1 lets processes of the container ptrace it or read its memory through /proc.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _spawn_child(argv: list[str], env: dict[str, str], blocked: set[signal.Signals]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            try:  # with a terminal, the child's group is the foreground one: Ctrl-C reaches it
                if os.isatty(0):
                    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                    os.tcsetpgrp(0, os.getpgrp())
                    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
            except OSError:
                pass
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
            os.execvpe(argv[0], argv, env)
        except OSError as err:
            os.write(2, f"pybuild-init: cannot run {argv[0]!r}: {err.strerror}\n".encode())
            os._exit(exec_status(err))
        except BaseException:
            os._exit(126)
    return pid


def _forward(sig: int, child: int) -> None:
    try:
        os.killpg(child, sig)
    except ProcessLookupError:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass


def _reap(child: int) -> int | None:
    """Reap every zombie there is; return the child's exit code once it is among them."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            return code
        if pid == child:
            code = exit_status(status)


def run_init(argv: list[str], env: dict[str, str]) -> NoReturn:
    """Be PID 1: start argv, forward signals, reap zombies, exit with the child's status."""
    code = 1
    try:
        _no_core_dumps_of_pid1()
        blocked = catchable_signals()
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        child = _spawn_child(argv, env, blocked)
        while True:
            info = signal.sigtimedwait(blocked, WAIT_TIMEOUT_S)
            if info is not None and info.si_signo != signal.SIGCHLD:
                _forward(info.si_signo, child)
            done = _reap(child)
            if done is not None:
                code = done
                break
        # Orphans adopted by us after the child ended are still reaped, briefly, as tini does.
        _reap(child)
    except BaseException as err:  # PID 1 must never leave through a traceback
        os.write(2, f"pybuild-init: {err}\n".encode())
    finally:
        sys.stdout.flush() if sys.stdout else None
    os._exit(code)


def main() -> NoReturn:
    """`python -m runtime.init CMD...`: the same loop, for use outside the sandbox (tests)."""
    if len(sys.argv) < 2:
        os.write(2, b"usage: python -m runtime.init CMD [ARG...]\n")
        os._exit(2)
    run_init(sys.argv[1:], dict(os.environ))


if __name__ == "__main__":
    main()
