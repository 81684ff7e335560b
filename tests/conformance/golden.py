"""Golden files: BuildKit's answer for each case, sealed so that a hand edit is caught.

`seal` is a sha256 over the canonical JSON of everything else in the file, salted with the name of
the script that alone may write it (refresh.py): editing a golden file by hand without re-running
the refresh breaks the seal and its test fails."""
from __future__ import annotations

import hashlib
import json
import os

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
_SALT = "written by tests/conformance/refresh.py from a live BuildKit; do not edit"


def _seal(payload: dict) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256((_SALT + blob).encode()).hexdigest()


def path_of(name: str) -> str:
    return os.path.join(GOLDEN_DIR, f"{name}.json")


def write(name: str, payload: dict) -> None:
    doc = {**payload, "seal": _seal(payload)}
    tmp = path_of(name) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path_of(name))


def read(name: str) -> dict | None:
    """The golden payload, or None when there is none; raises ValueError when its seal is broken."""
    try:
        with open(path_of(name)) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    seal = doc.pop("seal", None)
    if seal != _seal(doc):
        raise ValueError(f"{path_of(name)}: seal broken: edited by hand? re-run tests/conformance/refresh.py")
    return doc
