"""Image and history times as BuildKit's (builder/history.py): a fully cached rebuild under another
tag gives the same image id; a changed step a new one; SOURCE_DATE_EPOCH wins over both."""
from __future__ import annotations

import json
import os

import pytest

from builder.history import fill_times

T0, T1, T2 = "2001-01-01T00:00:00Z", "2002-01-01T00:00:00Z", "2003-01-01T00:00:00Z"


def _h(*times):
    return [{"created": t} if t else {} for t in times]


# What dockerd 20.10's BuildKit wrote (docker save of `FROM base / ENV / COPY / LABEL / RUN / ENV`,
# and of `FROM base / ENV / LABEL`): config-only steps carry no time of their own.
@pytest.mark.parametrize("given,filled", [
    (_h(T0, None, T1, None, T2, None), _h(T0, T1, T1, T1, T2, T2)),  # ENV before COPY: the COPY's time
    (_h(T0, None, None), _h(T0, T0, T0)),                             # config only: the base's time
    (_h(None, T1, None), _h(T1, T1, T1)),
    (_h(T0, T1, T2), _h(T0, T1, T2)),
    (_h(None, None), _h(None, None)),                                 # no time anywhere: none made up
])
def test_fill_times(given, filled):
    assert fill_times(given) == filled


DOCKERFILES = [
    "FROM scratch\nENV A=1\nLABEL x=y\n",
    "FROM scratch\nENV A=1\nCOPY a.txt /a\nLABEL x=y\nCOPY b.txt /b\nENV B=2\n",
    'FROM scratch\nCOPY a.txt /a\nCMD ["/a"]\n',
]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_a_cached_rebuild_under_another_tag_keeps_the_image_id(make_build, dockerfile):
    files = {"a.txt": "a", "b.txt": "b"}
    store, first, _ = make_build(dockerfile, files, tags=("one:1",))
    _, second, _ = make_build(dockerfile, files, tags=("two:1",))
    assert second.cached == second.steps
    assert second.image.id == first.image.id == store.resolve("one:1").id == store.resolve("two:1").id
    times = [h.get("created") for h in first.image.history]
    assert first.image.created == (times[-1] if times else None)


def test_a_changed_step_gives_a_new_id_and_time(make_build, tmp_path):
    df = "FROM scratch\nCOPY a.txt /a\nCOPY b.txt /b\nENV E=1\n"
    _, first, _ = make_build(df, {"a.txt": "a", "b.txt": "b"}, tags=("t:1",))
    _, changed, _ = make_build(df, {"b.txt": "B"}, tags=("t:2",))
    assert changed.image.id != first.image.id
    old, new = first.image.history, changed.image.history
    assert new[0]["created"] == old[0]["created"]          # COPY a.txt: cached, its time kept
    assert new[1]["created"] > old[1]["created"]           # COPY b.txt: made again, now
    assert changed.image.created == new[1]["created"] == new[2]["created"]


def test_source_date_epoch_wins(make_build):
    df = "FROM scratch\nCOPY a.txt /a\nENV E=1\n"
    make_build(df, {"a.txt": "a"}, tags=("t:1",))                       # the cache holds a "now" time
    _, pinned, _ = make_build(df, {"a.txt": "a"}, tags=("t:2",), source_date_epoch=1_700_000_000)
    assert pinned.cached == 1
    assert pinned.image.created == "2023-11-14T22:13:20Z"
    assert {h["created"] for h in pinned.image.history} == {"2023-11-14T22:13:20Z"}


def test_a_cache_entry_without_a_time_is_dated_once(make_build, tmp_path):
    """Entries written before they kept their layer's time: the first rebuild dates them, the
    next ones keep that date (and the image id)."""
    df = "FROM scratch\nCOPY a.txt /a\n"
    store, _, _ = make_build(df, {"a.txt": "a"})
    cache = os.path.join(store.root, "cache")
    for name in os.listdir(cache):
        with open(os.path.join(cache, name)) as f:
            entry = json.load(f)
        entry.pop("created", None)
        entry.get("history", {}).pop("created", None)
        with open(os.path.join(cache, name), "w") as f:
            json.dump(entry, f)
    _, dated, _ = make_build(df, tags=("a:1",))
    _, again, _ = make_build(df, tags=("b:1",))
    assert again.cached == 1 and again.image.id == dated.image.id
