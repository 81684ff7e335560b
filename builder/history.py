"""An image's times as BuildKit's exporter sets them, so that a rebuild that hits the cache on every
step gives the same image id whatever its tag (dockerd 20.10's BuildKit, checked with `docker save`).

BuildKit's frontend gives a layer step's history entry the time its layer was first made (kept in
the cache, so a cached rebuild has the same time) and a config-only step (ENV, LABEL...) no time at
all. The exporter (exporter/containerimage/writer.go: normalizeLayersAndHistory, patchImageConfig)
then fills every missing time and takes the image's `created` from the last history entry:
- history: an entry without a time gets the time of the first new layer after an untimed entry
  (so `ENV` before `COPY` gets the COPY's time, not the base's), then, from the first untimed entry
  on, the time of the latest layer above it;
- created: the last history entry's time; none at all (FROM scratch and config only) leaves it out,
  as BuildKit's null.
"""
from __future__ import annotations


def fill_times(history: list[dict]) -> list[dict]:
    """The history with every missing `created` filled as BuildKit's exporter fills it."""
    created, untimed = None, False
    for h in history:
        if h.get("created"):
            created = h["created"]
            if untimed:
                break
        else:
            untimed = True
    out, untimed = [], False
    for h in history:
        if h.get("created"):
            if untimed:
                created = h["created"]
        else:
            untimed = True
            if created:
                h = {**h, "created": created}
        out.append(h)
    return out


def stamp(image, source_date_epoch: str | None = None):
    """`image` with its history times filled and its `created` set: SOURCE_DATE_EPOCH when given,
    else the last history entry's time (None: no time anywhere, the field is left out)."""
    history = fill_times(image.history)
    times = [h["created"] for h in history if h.get("created")]
    return image.with_fields(history=history, created=source_date_epoch or (times[-1] if times else None))
