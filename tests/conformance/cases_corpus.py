"""Cases we did not write: kaniko's integration-test Dockerfiles (../shared/corpus/kaniko-integration,
read where they lie), each built by BuildKit and by pybuild on the same inputs.

Two things are ours, the same for both tools: every FROM of a registry image becomes the
conformance base (no registry is reachable here), and the context is a tree shaped like kaniko's
own `integration/context` (the corpus does not carry it). Whatever BuildKit then does — build, or
refuse (apt-get on busybox, a URL it cannot reach) — is the golden answer pybuild must give.
"""
from __future__ import annotations

import os
import re
import sys

from model import BASE_REF, Case, D, F, H, L

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from corpus_paths import corpus_dir  # noqa: E402

PREFIX = "GoogleContainerTools+kaniko__integration__"
_FROM = re.compile(r"^(\s*FROM\s+(?:--platform=\S+\s+)?)(\S+)(.*)$", re.IGNORECASE | re.MULTILINE)
_STAGE = re.compile(r"^\s*FROM\s+.*?\s+AS\s+(\S+)\s*$", re.IGNORECASE | re.MULTILINE)

# Shaped like kaniko's integration/context: what its Dockerfiles name.
CONTEXT = {
    "context/foo": F("hello world\n"),
    "context/bar/bam": F("bam\n"),
    "context/bar/bat": F("bat\n", mode=0o755),
    "context/bar/baz": F("baz\n"),
    "context/empty": D(),
    "context/qux": F("qux\n"),
    "context/quux": F("quux\n"),
    "context/arr[0].txt": F("arr\n"),
    "context/b/foo": F("b foo\n"),
    "context/foo.link": L("foo"),
    "context/foo.hard": H("context/foo"),
    "context/tars/file.tar": F("not really a tar\n"),
    "test": F("test file at the root\n"),
    "Dockerfile_test_copy": F("a file named like a Dockerfile\n"),
}


# Left out, each for a reason: their result depends on the clock, so no two builds agree.
CLOCK = {
    "dockerfiles__Dockerfile_test_cache": "RUN date > /date",
    "dockerfiles__Dockerfile_test_cache_oci": "RUN date > /date",
}


def _rebase(text: str) -> str:
    stages = {m.group(1).lower() for m in _STAGE.finditer(text)}

    def sub(m):
        ref = m.group(2)
        if ref.lower() in stages or ref.lower() == "scratch" or "$" in ref:
            return m.group(0)
        return f"{m.group(1)}{BASE_REF}{m.group(3)}"
    return _FROM.sub(sub, text)


def corpus_cases() -> list[Case]:
    root = corpus_dir()
    if root is None:
        return []
    folder = root / "kaniko-integration"
    out = []
    for entry in sorted(os.listdir(folder)):
        dockerfile = folder / entry / "Dockerfile"
        if not entry.startswith(PREFIX) or not dockerfile.is_file() or entry[len(PREFIX):] in CLOCK:
            continue
        name = "kaniko-" + re.sub(r"[^a-z0-9]+", "-", entry[len(PREFIX):].lower()).strip("-")
        text = dockerfile.read_text(encoding="utf-8", errors="surrogateescape")
        if not text.endswith("\n"):
            text += "\n"
        out.append(Case(name, _rebase(text), dict(CONTEXT), build_args=(("IMAGE_NAME", BASE_REF),),
                        rule=f"kaniko's {entry[len(PREFIX):]}"))
    return out
