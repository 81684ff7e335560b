"""Generated conformance cases (placeholder until the generator lands: no generated cases yet)."""
from __future__ import annotations


def generated_cases(n: int):
    return []
