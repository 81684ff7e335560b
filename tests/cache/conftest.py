"""Fixtures for the store's tests: a fresh store in a tmp dir, schema validators, small trees."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cache.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(str(tmp_path / "store"))


@pytest.fixture(scope="session")
def oci_schema(corpus: Path):
    """validate(kind, obj): raises on an invalid manifest/config/index/layout (draft-04 schemas)."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    folder = corpus / "oci-schema"

    def retrieve(uri: str) -> Resource:
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        return Resource.from_contents(json.loads((folder / name).read_text()), default_specification=DRAFT4)

    registry = Registry(retrieve=retrieve)
    files = {"manifest": "image-manifest-schema.json", "index": "image-index-schema.json",
             "config": "config-schema.json", "layout": "image-layout-schema.json"}

    def validate(kind: str, obj: dict) -> None:
        schema = json.loads((folder / files[kind]).read_text())
        jsonschema.Draft4Validator(schema, registry=registry).validate(obj)
    return validate
