"""pybuild against BuildKit's recorded answers (golden/), case by case: the same image config, history
shape, layer entries (describe.py lists the normalisations) and default command's output."""
from __future__ import annotations

import os
import sys

import pytest

import golden
from base import base_digest, base_tar_path
from cases import all_cases
from cases_corpus import corpus_cases
from describe import comparable, differences
from tools import Pybuild, run_case

CASES = all_cases()

# Where pybuild is stricter than dockerd 20.10's BuildKit, on purpose: the case must fail in pybuild
# with a clear one-line error. Each entry says why; nothing else may differ.
STRICTER = {
    "copy-chown-unknown-name": "BuildKit 0.8 silently chowns to 0:0 when --chown names a user the image "
                               "lacks (later BuildKit refuses it); a typo must not give root-owned files",
}
pytestmark = [pytest.mark.root, pytest.mark.namespaces]

# Where dockerd 20.10's BuildKit refuses what Docker users build every day, and pybuild builds it:
# the case must build. Each entry says why.
LOOSER = {
    name: "a stage name in capitals (`AS BUG_stage`): BuildKit 0.8 refuses it as an image reference; the "
          "classic builder (kaniko's tests compare with it) and later BuildKit take stage names case-insensitively"
    for name in ("kaniko-dockerfiles-dockerfile-test-from-multistage-capital", "kaniko-dockerfiles-dockerfile-test-issue-519")
}


@pytest.fixture(scope="module")
def pybuild(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("conformance-store"))
    exe = os.path.join(os.path.dirname(sys.executable), "pybuild")
    return Pybuild(root, [exe])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_buildkit(pybuild, case, tmp_path):
    expected = golden.read(case.name)
    assert expected is not None, f"{case.name}: no golden file: run tests/conformance/refresh.py --missing"
    assert expected["input"] == case.input_hash(), f"{case.name}: the case changed since its golden: refresh it"
    actual = run_case(pybuild, case, keep_dir=str(tmp_path))
    want = expected["result"]
    if case.fails is not None:  # the case's own intent, so a base missing a tool cannot hide a case
        assert bool(want.get("error")) == case.fails, (
            f"BuildKit {'built' if case.fails else 'refused'} this case, which is meant to "
            f"{'fail' if case.fails else 'build'}: fix the case ({want.get('message', '')})")
    if case.name in LOOSER:
        assert not actual.get("error"), f"{LOOSER[case.name]}; pybuild failed: {actual.get('message')}"
        return
    if case.name in STRICTER:
        assert actual.get("error") and "pybuild: error:" in actual["message"], STRICTER[case.name]
        return
    if want.get("error"):
        assert actual.get("error"), f"BuildKit refused this case ({want['message']}); pybuild built it"
        return
    assert not actual.get("error"), f"BuildKit built this case; pybuild failed: {actual.get('message')}"
    diffs = differences(comparable(want), comparable(actual))
    assert not diffs, "\n".join(diffs)


def test_goldens_are_sealed_and_current():
    """Every golden belongs to a case, is unedited and was made on the base the tests use."""
    names = {c.name for c in CASES}
    digest = base_digest(base_tar_path())
    for entry in sorted(os.listdir(golden.GOLDEN_DIR)):
        name = entry.removesuffix(".json")
        if name.startswith("kaniko-") and not corpus_cases():
            continue  # made from ../shared/corpus, which this machine lacks
        assert name in names, f"golden/{entry}: no such case (remove it)"
        doc = golden.read(name)
        assert doc["base"] == digest, f"golden/{entry}: made on another base ({doc['base']}): refresh"
