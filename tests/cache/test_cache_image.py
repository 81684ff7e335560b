"""Image values: read-only, changes return new values; ids follow content; the JSON is valid OCI."""
from __future__ import annotations

import pytest

from cache import mediatypes as mt
from cache.image import Descriptor, Image, chain_ids
from cache.layers import Layer

L1 = Layer(Descriptor(mt.OCI_LAYER_GZIP, "sha256:" + "1" * 64, 10), "sha256:" + "a" * 64, 20)
L2 = Layer(Descriptor(mt.OCI_LAYER_GZIP, "sha256:" + "2" * 64, 11), "sha256:" + "b" * 64, 21)


def test_empty_image():
    img = Image.empty(architecture="arm64")
    assert img.layers == [] and img.diff_ids == [] and img.config_section == {}
    assert (img.os, img.architecture) == ("linux", "arm64")
    assert img.id == Descriptor.of_bytes(img.config_bytes, mt.OCI_CONFIG).digest


def test_changes_return_new_values_and_keep_the_old():
    base = Image.empty()
    one = base.with_layer(L1, {"created_by": "RUN a"})
    two = one.with_config(Env=["A=1"], Cmd=["sh"], history={"created_by": "ENV A=1"})
    assert base.layers == [] and one.config_section == {}
    assert two.diff_ids == [L1.diff_id] and two.layers == [L1.descriptor]
    assert two.config_section == {"Env": ["A=1"], "Cmd": ["sh"]}
    assert [h.get("empty_layer", False) for h in two.history] == [False, True]
    assert len({base.id, one.id, two.id}) == 3
    assert two.with_config(Cmd=None).config_section == {"Env": ["A=1"]}


def test_same_content_same_id():
    a = Image.empty(architecture="amd64").with_layer(L1, {"created_by": "x", "created": "1970-01-01T00:00:00Z"})
    b = Image.empty(architecture="amd64").with_layer(L1, {"created_by": "x", "created": "1970-01-01T00:00:00Z"})
    assert a.id == b.id and a == b


def test_docker_fields_kept():
    img = Image.empty().with_config(Healthcheck={"Test": ["CMD", "true"], "Interval": 1_000_000_000},
                                    OnBuild=["RUN true"], Shell=["/bin/bash", "-c"], StopSignal="SIGINT")
    typed = img.typed_config
    assert typed.shell == ("/bin/bash", "-c") and typed.on_build == ("RUN true",) and typed.stop_signal == "SIGINT"
    assert img.config_section["Healthcheck"]["Test"] == ["CMD", "true"]


def test_chain_ids_as_the_spec_defines():
    import hashlib

    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]
    assert chain_ids([]) == []


def test_docker_media_types_rewritten_as_oci():
    manifest = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                "config": {"mediaType": mt.DOCKER_CONFIG, "digest": "sha256:" + "c" * 64, "size": 2},
                "layers": [{"mediaType": mt.DOCKER_LAYER_GZIP, "digest": "sha256:" + "1" * 64, "size": 1}]}
    img = Image(manifest, {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}, "config": {}})
    new = img.with_config(User="app")
    assert new.manifest["mediaType"] == mt.OCI_MANIFEST and new.manifest["config"]["mediaType"] == mt.OCI_CONFIG
    assert new.layers[0].media_type == mt.OCI_LAYER_GZIP


def test_json_validates_against_oci_schema(oci_schema):
    img = Image.empty().with_layer(L1, {"created_by": "RUN a", "created": "2024-01-01T00:00:00Z"}).with_layer(
        L2, {"created_by": "COPY"}).with_config(Env=["PATH=/bin"], ExposedPorts={"80/tcp": {}}, Volumes={"/data": {}},
                                                Labels={"a": "b"}, Cmd=["sh"], StopSignal="SIGTERM")
    oci_schema("manifest", img.manifest)
    oci_schema("config", img.config)


def test_schema_catches_broken_json(oci_schema):
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        oci_schema("manifest", {"schemaVersion": 2, "config": {"mediaType": 1}, "layers": []})
