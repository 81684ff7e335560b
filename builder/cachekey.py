"""Build-cache keys: xxh3-128 over the parent key, the expanded instruction, the args it reads and,
for COPY/ADD, each source's relative path, mode and content (never mtime) and --chown as written
(expanded: the ids it names follow from the image, which the parent key covers).

`explain` keeps the parts of a key, so `--explain-cache` can say which one differs from the last
build's key for the same step (which file changed, which arg, or that an earlier step missed).
"""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyParts:
    parent: str
    instruction: str
    args: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str, int, str], ...] = ()   # (source rel path, destination, mode, content digest)
    owner: str = ""

    def key(self) -> str:
        import xxhash

        data = json.dumps([self.parent, self.instruction, self.args, self.files, self.owner], separators=(",", ":"))
        return xxhash.xxh3_128_hexdigest(data.encode("utf-8", "surrogateescape"))

    def to_json(self) -> dict:
        return {"parent": self.parent, "instruction": self.instruction, "args": [list(a) for a in self.args],
                "files": [list(f) for f in self.files], "owner": self.owner}


def explain_miss(now: KeyParts, before: dict | None) -> str:
    """One line: why this step missed, compared with the parts recorded for this step last time."""
    if before is None:
        return "first build of this step"
    if before.get("parent") != now.parent:
        return "an earlier step changed"
    if before.get("instruction") != now.instruction:
        return f"the instruction changed (was: {before.get('instruction')})"
    old_args, new_args = dict(map(tuple, before.get("args", []))), dict(now.args)
    for name in sorted(set(old_args) | set(new_args)):
        if old_args.get(name) != new_args.get(name):
            return f"build arg {name} changed ({old_args.get(name)!r} -> {new_args.get(name)!r})"
    old_files = {f[0]: f[1:] for f in before.get("files", [])}
    new_files = {f[0]: f[1:] for f in now.files}
    for rel in sorted(set(old_files) | set(new_files)):
        if rel not in old_files:
            return f"file {rel} was added"
        if rel not in new_files:
            return f"file {rel} was removed"
        if list(old_files[rel]) != list(new_files[rel]):
            what = "content" if old_files[rel][-1] != new_files[rel][-1] else "mode or destination"
            return f"file {rel} changed ({what})"
    if before.get("owner") != now.owner:
        return "the owner (--chown) changed"
    return "no cache entry (removed or never stored)"
