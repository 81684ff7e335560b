"""Seccomp: Docker's default profile (or the user's), compiled to a BPF filter with libseccomp.

The policy is DATA: `seccomp_default.json` is moby's profiles/seccomp/default.json (provenance and
licence in its "comment"), and a `--security-opt seccomp=PROFILE.json` is a file in the same format.
This module interprets a profile as moby's setupSeccomp does (the archMap entry of this machine;
a rule kept only if its includes/excludes match the container's capabilities, architecture and
kernel) and builds the filter as runc does (one rule per syscall name; arguments compared on
distinct indexes are ANDed in one rule, several comparisons of one index become separate rules;
a rule whose action is the default one is left out; names libseccomp does not know are skipped).

Like runc, a filter whose default action refuses answers ENOSYS (not EPERM) for the syscalls newer
than every one the profile names, so a libc falls back to the old call (glibc's fchmodat2 or
clone3 probes) instead of failing.

The filter is compiled in the parent (where errors are still clear) and kept as bytes: the
sandbox's child only hands them to seccomp(2) (runtime/linux.py) after no_new_privs, so libseccomp
is never needed inside the container's root.

Why a ctypes binding and not python3-seccomp (or pyseccomp): Debian's python3-seccomp is an
extension built for Debian's /usr/bin/python3 only, not importable in our venv's interpreter;
pyseccomp is itself a ctypes wrapper, a dependency for the dozen libseccomp calls used here.
libseccomp2 (the shared library) is what every Debian with docker or podman already has.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import struct
from dataclasses import dataclass

from grammar.errors import PybuildError

DEFAULT = "default"          # SandboxSpec.seccomp / RunConfig.seccomp: Docker's default profile
UNCONFINED = "unconfined"    # no filter at all (as --privileged)

# libseccomp's action values (seccomp.h) and the kernel's SECCOMP_RET_* they become.
_ACTIONS = {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
            "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
            "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
            "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000}
_WITH_VALUE = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
# uname -m -> the Go architecture name that a profile's includes/excludes "arches" use (moby's goToNative)
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "x86", "i386": "x86", "armv7l": "arm",
            "armv6l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64",
            "mips64": "mips64", "loongarch64": "loong64"}
_X32_BIT = 0x40000000
_AUDIT_ARCH_X86_64 = 0xC000003E


class SeccompError(PybuildError):
    """A seccomp profile that cannot be read or used (the container never starts)."""


@dataclass(frozen=True)
class Filter:
    """A compiled filter: the BPF program (struct sock_filter[]) and seccomp(2)'s flags."""
    program: bytes
    flags: int = 0
    rules: int = 0           # syscall rules kept (for --explain)
    source: str = ""         # which profile (for --explain)

    @property
    def instructions(self) -> int:
        return len(self.program) // 8


def read_option(value: str) -> str:
    """`--security-opt seccomp=VALUE`: "unconfined", or the profile file's JSON text (kept in the
    container's record, as docker keeps it, so exec and a restart use the same even if the file
    changes). A file that is not a usable profile is refused here, with one line saying why."""
    if value == UNCONFINED:
        return UNCONFINED
    try:
        with open(value, "rb") as f:
            text = f.read(4 << 20).decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SeccompError(f"opening seccomp profile ({value}) failed: {getattr(err, 'strerror', None) or err}") from None
    compile_profile(text, (), privileged=False, where=f"seccomp profile {value}")  # every error now, before the container
    return text


def compile_profile(profile: str | None, caps: tuple[str, ...] | list[str], *, privileged: bool,
                    where: str = "seccomp profile") -> Filter | None:
    """The filter for a container with these capabilities (names as runtime.caps.NAMES), or None
    when it runs unconfined (the profile says so, or --privileged as with Docker)."""
    if privileged or profile == UNCONFINED:
        return None
    if profile in (None, "", DEFAULT):
        where = "Docker's default seccomp profile"
        with open(os.path.join(os.path.dirname(__file__), "seccomp_default.json"), encoding="utf-8") as f:
            profile = f.read()  # (not importlib.resources: importing it costs ~15 ms)
    doc = _decode(profile, where)
    if not doc.get("defaultAction") and not doc.get("syscalls"):
        return None  # moby: no default action and no syscalls means seccomp disabled
    try:
        rules = _select(doc, {"CAP_" + c.upper().removeprefix("CAP_") for c in caps}, where)
        return _Compiler(where).build(doc, rules)
    except (AttributeError, TypeError, KeyError, ValueError) as err:  # a field of the wrong JSON type
        raise SeccompError(f"{where}: not a seccomp profile ({type(err).__name__}: {err})",
                           hint="see docker's profile format: defaultAction, archMap, syscalls") from None


def _decode(text: str, where: str) -> dict:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise SeccompError(f"{where}: not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    if not isinstance(doc, dict):
        raise SeccompError(f"{where}: a profile is a JSON object with defaultAction and syscalls")
    if doc.get("architectures") and doc.get("archMap"):
        raise SeccompError(f"{where}: both 'architectures' and 'archMap' are specified, use either one")
    if doc.get("listenerPath") or doc.get("defaultAction") == "SCMP_ACT_NOTIFY":
        raise SeccompError(f"{where}: SCMP_ACT_NOTIFY (a seccomp agent) is not supported by pybuild")
    if not isinstance(doc.get("syscalls") or [], list):
        raise SeccompError(f"{where}: 'syscalls' must be a list")
    return doc


def _kernel() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def _min_kernel(text: str, where: str) -> tuple[int, int]:
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise SeccompError(f"{where}: minKernel {text!r} is not a version like 4.8") from None


def _select(doc: dict, caps: set[str], where: str) -> list[dict]:
    """The rules that apply here, as moby's setupSeccomp keeps them."""
    arch = _GO_ARCH.get(os.uname().machine, os.uname().machine)
    kept = []
    for call in doc.get("syscalls") or []:
        if not isinstance(call, dict):
            raise SeccompError(f"{where}: each entry of 'syscalls' must be an object")
        if call.get("name") and call.get("names"):
            raise SeccompError(f"{where}: both 'name' and 'names' are specified, use either one")
        exc, inc = call.get("excludes") or {}, call.get("includes") or {}
        if arch in (exc.get("arches") or []) or caps & set(exc.get("caps") or []):
            continue
        if exc.get("minKernel") and _kernel() >= _min_kernel(exc["minKernel"], where):
            continue
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if not set(inc.get("caps") or []) <= caps:
            continue
        if inc.get("minKernel") and _kernel() < _min_kernel(inc["minKernel"], where):
            continue
        kept.append(call)
    return kept


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def _libseccomp():
    """libseccomp.so.2 through ctypes (loaded on first use: nothing happens at import time)."""
    try:  # (the soname, not ctypes.util.find_library: that runs ldconfig, ~30 ms)
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        raise SeccompError("libseccomp is not installed", hint="apt-get install libseccomp2, "
                           "or run with --security-opt seccomp=unconfined") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)
    lib.seccomp_arch_add.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_syscall_resolve_name_arch.argtypes = (ctypes.c_uint32, ctypes.c_char_p)
    lib.seccomp_rule_add_array.argtypes = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp))
    lib.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
    return lib


class _Compiler:
    def __init__(self, where: str):
        self.where = where
        self.lib = _libseccomp()

    def action(self, name, value, what: str) -> int:
        if name not in _ACTIONS:
            raise SeccompError(f"{self.where}: {what}: unknown action {name!r}",
                               hint="use one of " + ", ".join(sorted(_ACTIONS)))
        if name in _WITH_VALUE:
            code = errno.EPERM if value is None and name == "SCMP_ACT_ERRNO" else (value or 0)
            if not isinstance(code, int) or not 0 <= code <= 0xFFFF:
                raise SeccompError(f"{self.where}: {what}: errnoRet {value!r} is not a number 0-65535")
            return _ACTIONS[name] | code
        return _ACTIONS[name]

    def arches(self, doc: dict) -> list[int]:
        native = self.lib.seccomp_arch_native()
        names = list(doc.get("architectures") or [])
        for entry in doc.get("archMap") or []:
            if self._arch_token(entry.get("architecture", "")) == native:
                names = [entry["architecture"], *(entry.get("subArchitectures") or [])]
        tokens = [native]
        for name in names:
            token = self._arch_token(name)
            if token and token not in tokens:  # (an architecture this libseccomp lacks: skipped)
                tokens.append(token)
        return tokens

    def _arch_token(self, name: str) -> int:
        return self.lib.seccomp_arch_resolve_name(str(name).lower().removeprefix("scmp_arch_").encode())

    def conditions(self, call: dict, where: str) -> list[list[_ArgCmp]]:
        """runc's rule: comparisons on distinct arguments are ANDed in one rule; if one argument is
        compared twice, each comparison becomes a rule of its own (ORed)."""
        conds, seen = [], []
        for a in call.get("args") or []:
            try:
                index, op, value, two = a["index"], _OPS[a["op"]], int(a.get("value", 0)), int(a.get("valueTwo", 0))
                if not 0 <= index <= 5 or not 0 <= value < 1 << 64 or not 0 <= two < 1 << 64:
                    raise ValueError
            except (KeyError, TypeError, ValueError):
                raise SeccompError(f"{self.where}: {where}: bad argument rule {json.dumps(a)}",
                                   hint="index 0-5, op SCMP_CMP_EQ|NE|LT|LE|GT|GE|MASKED_EQ, value") from None
            conds.append(_ArgCmp(index, op, value, two))
            seen.append(index)
        if not conds:
            return [[]]
        return [[c] for c in conds] if len(set(seen)) < len(seen) else [conds]

    def build(self, doc: dict, rules: list[dict]) -> Filter:
        lib = self.lib
        default = self.action(doc.get("defaultAction"), doc.get("defaultErrnoRet"), "defaultAction")
        flags = 0
        for flag in doc.get("flags") or []:
            if flag not in _FLAGS:
                raise SeccompError(f"{self.where}: unknown flag {flag!r}", hint="use " + ", ".join(_FLAGS))
            flags |= _FLAGS[flag]
        ctx = lib.seccomp_init(default)
        if not ctx:
            raise SeccompError(f"{self.where}: libseccomp refused the default action")
        try:
            arches = self.arches(doc)
            for token in arches[1:]:
                self._ok(lib.seccomp_arch_add(ctx, token), "adding an architecture")
            names: set[str] = set()
            count = 0
            for call in rules:
                call_names = call.get("names") or ([call["name"]] if call.get("name") else [])
                if not isinstance(call_names, list) or not all(isinstance(n, str) for n in call_names):
                    raise SeccompError(f"{self.where}: 'names' must be a list of syscall names")
                act = self.action(call.get("action"), call.get("errnoRet"), f"syscalls {call_names[:3]}")
                groups = self.conditions(call, f"syscalls {call_names[:3]}")
                if act == default:
                    continue
                for name in call_names:
                    nr = lib.seccomp_syscall_resolve_name(name.encode())
                    if nr == -1:  # __NR_SCMP_ERROR: unknown to this libseccomp (runc skips it too)
                        continue
                    names.add(name)
                    for conds in groups:
                        array = (_ArgCmp * len(conds))(*conds) if conds else None
                        self._ok(lib.seccomp_rule_add_array(ctx, act, nr, len(conds), array), f"syscall {name}")
                        count += 1
            program = self._export(ctx)
        finally:
            lib.seccomp_release(ctx)
        if default & 0xFFFF0000 not in (_ACTIONS["SCMP_ACT_ALLOW"], _ACTIONS["SCMP_ACT_LOG"]):
            program = self._enosys_stub(arches, names) + program
        return Filter(program, flags, count, self.where)

    def _ok(self, ret: int, what: str) -> None:
        if ret < 0:
            raise SeccompError(f"{self.where}: libseccomp refused {what}: {os.strerror(-ret)}")

    def _export(self, ctx) -> bytes:
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            self._ok(self.lib.seccomp_export_bpf(ctx, fd), "exporting the filter")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _enosys_stub(self, arches: list[int], names: set[str]) -> bytes:
        """BPF run before libseccomp's program: for each architecture, a syscall number above the
        highest the profile names answers ENOSYS (runc's patchbpf, in short). On x86_64 the x32
        calls (number | 0x40000000, same audit arch) have their own highest number."""
        highest: dict[int, int] = {}
        for token in arches:
            nrs = [self.lib.seccomp_syscall_resolve_name_arch(token, n.encode()) for n in names]
            nrs = [nr for nr in nrs if nr >= 0]
            if nrs:
                highest[token] = max(nrs)
        x32 = self._arch_token("x32")
        blocks: list[list[tuple]] = []
        for token, top in highest.items():
            if token == x32:
                continue  # checked inside the x86_64 block
            block = [("ld_nr",)]
            if token == _AUDIT_ARCH_X86_64:
                if x32 in highest:
                    block += [("jset", _X32_BIT, "x32_check", 0), ("jgt", top, "enosys", "end"),
                              ("label", "x32_check"), ("jgt", highest[x32], "enosys", "end")]
                else:
                    block += [("jset", _X32_BIT, "end", 0), ("jgt", top, "enosys", "end")]
            else:
                block += [("jgt", top, "enosys", "end")]
            blocks.append([("arch", token)] + block)
        return _assemble(blocks)


# classic BPF opcodes (linux/filter.h)
_LD_W_ABS, _JA, _JEQ_K, _JGT_K, _JSET_K, _RET_K = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06


def _assemble(blocks: list[list[tuple]]) -> bytes:
    """The stub: A = arch; per block `arch TOKEN` (else on to the next block, A still the arch),
    A = nr, then tests whose targets are "enosys" or "end" (the first instruction of libseccomp's
    program, which follows the stub); an unknown arch falls through to "end". Jumps go forward."""
    code: list[list] = [[_LD_W_ABS, 0, 0, 4]]     # A = seccomp_data.arch
    labels: dict[str, int] = {}
    for i, block in enumerate(blocks):
        for ins in block:
            if ins[0] == "arch":
                code.append([_JEQ_K, 0, f"next{i}", ins[1]])
            elif ins[0] == "ld_nr":
                code.append([_LD_W_ABS, 0, 0, 0])   # A = seccomp_data.nr
            elif ins[0] == "label":
                labels[ins[1] + str(i)] = len(code)
            else:
                op, k, jt, jf = ins
                jt, jf = (j + str(i) if j == "x32_check" else j for j in (jt, jf))
                code.append([_JGT_K if op == "jgt" else _JSET_K, jt, jf, k])
        labels[f"next{i}"] = len(code)
    code.append([_JA, 0, 0, 1])                   # no block matched: over the RET, to "end"
    labels["enosys"] = len(code)
    code.append([_RET_K, 0, 0, _ACTIONS["SCMP_ACT_ERRNO"] | errno.ENOSYS])
    labels["end"] = len(code)
    out = b""
    for pos, (op, jt, jf, k) in enumerate(code):
        jt, jf = (labels[j] - pos - 1 if isinstance(j, str) else j for j in (jt, jf))
        if not 0 <= jt <= 255 or not 0 <= jf <= 255:
            raise SeccompError("the seccomp ENOSYS stub is too long for a BPF jump")
        out += struct.pack("=HBBI", op, jt, jf, k)
    return out
