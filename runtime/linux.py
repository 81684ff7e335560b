"""The Linux calls that Python's `os` lacks, through ctypes: the ONE such module of pybuild.

Every function raises OSError (with errno and the call's name) when the kernel refuses, so a
caller can never mistake a failed mount for a done one. Nothing happens at import time beyond
loading libc. x86_64 and aarch64 syscall numbers are listed where libc has no wrapper.
"""
from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_libc.syscall.restype = ctypes.c_long

# namespaces (clone flags)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl options
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capget": 125, "capset": 126, "openat2": 437, "seccomp": 317},
    "aarch64": {"pivot_root": 41, "capget": 90, "capset": 91, "openat2": 437, "seccomp": 277},
}


def _nr(name: str) -> int:
    return _SYSCALLS[os.uname().machine][name]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_nr("pivot_root"), _b(new_root), _b(put_old)), f"pivot_root {new_root}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    ret = _libc.prctl(option, arg2, arg3, arg4, arg5)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl {option}: {os.strerror(err)}")
    return ret


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) as 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.syscall(_nr("capget"), ctypes.byref(hdr), data), "capget")
    join = lambda f: getattr(data[0], f) | (getattr(data[1], f) << 32)  # noqa: E731
    return join("effective"), join("permitted"), join("inheritable")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i, shift in enumerate((0, 32)):
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_nr("capset"), ctypes.byref(hdr), data), "capset")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


SECCOMP_SET_MODE_FILTER = 1


def seccomp_set_filter(program: bytes, flags: int = 0) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog): install a compiled BPF filter (struct
    sock_filter[], 8 bytes each) on this thread; it stays across execve and is inherited by every
    child. Needs no_new_privs (or CAP_SYS_ADMIN)."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    _check(_libc.syscall(_nr("seccomp"), SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog)), "seccomp")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), f"sethostname {name}")


OVERLAYFS_MAGIC = 0x794C7630
TMPFS_MAGIC = 0x01021994


def statfs_type(path: str) -> int:
    """The f_type (filesystem magic) of the filesystem holding path."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit; f_type comes first
    _check(_libc.statfs(_b(path), buf), f"statfs {path}")
    return ctypes.c_long.from_buffer(buf).value


PROC_SUPER_MAGIC = 0x9FA0


def fstatfs_type(fd: int) -> int:
    """The f_type (filesystem magic) of the filesystem holding the open file fd (O_PATH will do)."""
    buf = ctypes.create_string_buffer(256)
    _check(_libc.fstatfs(fd, buf), f"fstatfs {fd}")
    return ctypes.c_long.from_buffer(buf).value


# openat2(2) (Linux 5.6): struct open_how and its resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2): the new fd. OSError(ENOSYS) on kernels before 5.6 (or under a seccomp filter that
    does not know the call), EAGAIN when a concurrent rename made a `..` step ambiguous (retry)."""
    how = _OpenHow(flags, mode, resolve)
    fd = _libc.syscall(_nr("openat2"), ctypes.c_int(dirfd), os.fsencode(path), ctypes.byref(how),
                       ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"openat2 {path}: {os.strerror(err)}", path)
    return fd
