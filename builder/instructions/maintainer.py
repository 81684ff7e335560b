"""MAINTAINER (deprecated): the image's `author` field."""
from __future__ import annotations

from dataclasses import replace


def apply(build, state, ins):
    new = build.config(state, ins, {})
    return replace(new, image=new.image.with_fields(author=ins.value))
