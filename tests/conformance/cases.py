"""All conformance cases: the hand-written ones (one per rule), the generated ones, and the ones
made from the corpus's kaniko Dockerfiles (when ../shared/corpus is there)."""
from __future__ import annotations

from cases_corpus import corpus_cases
from cases_hand import HAND_CASES
from generate import generated_cases

GENERATED = 200


def all_cases():
    cases = list(HAND_CASES) + generated_cases(GENERATED) + corpus_cases()
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"case names repeat: {sorted(dupes)}"
    return cases
