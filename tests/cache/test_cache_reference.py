"""Docker's reference normalization, table-driven (cases from distribution/reference's rules)."""
from __future__ import annotations

import pytest

from cache.errors import InvalidReference
from cache.reference import looks_like_id, parse_reference

H = "a" * 64


@pytest.mark.parametrize("text, name, familiar", [
    ("node", "docker.io/library/node:latest", "node:latest"),
    ("node:18", "docker.io/library/node:18", "node:18"),
    ("library/node", "docker.io/library/node:latest", "node:latest"),
    ("docker.io/node", "docker.io/library/node:latest", "node:latest"),
    ("index.docker.io/library/node:18", "docker.io/library/node:18", "node:18"),
    ("registry-1.docker.io/x/y", "docker.io/x/y:latest", "x/y:latest"),
    ("user/app:1.0", "docker.io/user/app:1.0", "user/app:1.0"),
    ("a/b/c", "docker.io/a/b/c:latest", "a/b/c:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app:v1"),
    ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000/a/b:latest"),
    ("gcr.io/project/img:tag", "gcr.io/project/img:tag", "gcr.io/project/img:tag"),
    ("Example.COM/app", "Example.COM/app:latest", "Example.COM/app:latest"),
    ("UPPER/case", "UPPER/case:latest", "UPPER/case:latest"),  # an upper-case first part is a registry
    (f"ubuntu@sha256:{H}", f"docker.io/library/ubuntu@sha256:{H}", f"ubuntu@sha256:{H}"),
    (f"ubuntu:22.04@sha256:{H}", f"docker.io/library/ubuntu:22.04@sha256:{H}", f"ubuntu:22.04@sha256:{H}"),
    (f"localhost:5000/app@sha256:{H}", f"localhost:5000/app@sha256:{H}", f"localhost:5000/app@sha256:{H}"),
    ("a__b/c-d--e.f_g:T_1.x-Y", "docker.io/a__b/c-d--e.f_g:T_1.x-Y", "a__b/c-d--e.f_g:T_1.x-Y"),
    ("my-reg:443/ns/img", "my-reg:443/ns/img:latest", "my-reg:443/ns/img:latest"),
])
def test_normalizes_like_docker(text, name, familiar):
    ref = parse_reference(text)
    assert ref.name == str(ref) == name
    assert ref.familiar == familiar


@pytest.mark.parametrize("text", [
    "", " node", "node ", "Node", "docker.io/Library/node", "node:", "node:-tag",
    "node:" + "t" * 129, "node@sha256:abc", f"node@sha256:{'A' * 64}", "node@", "a//b", "a/", "/a",
    "-a", "a-", "a..b", "a___b", H, "host:port:5000/app", "ex_ample.com/app", "node:tag@", "a:b:c",
    "x/" + "a" * 260,
])
def test_rejects_invalid(text):
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_fields_and_default_tag():
    ref = parse_reference("localhost:5000/ns/app")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("localhost:5000", "ns/app", "latest", None)
    assert parse_reference(f"app@sha256:{H}").tag is None
    assert parse_reference("app", default_tag=None).tag is None


@pytest.mark.parametrize("text, expected", [
    ("abcd", True), ("abc", False), (H, True), ("sha256:" + H, True), ("node", False), ("ABCD", False), ("a" * 65, False),
])
def test_looks_like_id(text, expected):
    assert looks_like_id(text) is expected
