"""The pieces that need no registry: Docker's config.json as Docker writes it, credential helpers'
store/erase, WWW-Authenticate parsing, Retry-After, Docker Hub's names."""
from __future__ import annotations

import base64
import json
import os

import pytest

from cache.registry import AuthError, config
from cache.registry.transport import _retry_after, parse_challenge


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("key,registry", [
    ("127.0.0.1:5000", "127.0.0.1:5000"),
    ("https://127.0.0.1:5000", "127.0.0.1:5000"),
    ("http://127.0.0.1:5000", "127.0.0.1:5000"),
    ("https://index.docker.io/v1/", "docker.io"),
    ("https://index.docker.io/v1/", "registry-1.docker.io"),
    ("registry.lan", "registry.lan"),
])
def test_credentials_found_under_the_keys_docker_writes(docker_config, key, registry):
    (docker_config / "config.json").write_text(json.dumps({"auths": {key: {"auth": _auth("bob", "pw:with:colons")}}}))
    assert config.credentials(registry) == config.Credentials("bob", "pw:with:colons")


def test_no_entry_is_anonymous(docker_config):
    (docker_config / "config.json").write_text(json.dumps({"auths": {"other:5000": {"auth": _auth("a", "b")}}}))
    assert config.credentials("127.0.0.1:5000") is None


@pytest.mark.parametrize("text,words", [
    ("{not json", ["cannot read"]),
    (json.dumps({"auths": {"r:1": {"auth": "%%%not-base64"}}}), ["not base64", "pybuild login r:1"]),
])
def test_broken_config_files_are_named(docker_config, text, words):
    (docker_config / "config.json").write_text(text)
    with pytest.raises(AuthError) as err:
        config.credentials("r:1")
    assert str(docker_config / "config.json") in str(err.value)
    assert all(w in str(err.value) for w in words)


def test_store_and_erase_keep_other_entries(docker_config):
    (docker_config / "config.json").write_text(json.dumps({"auths": {"keep:1": {"auth": _auth("k", "k")}},
                                                           "psFormat": "table"}))
    config.store_credentials("docker.io", config.Credentials("hub", "secret"))
    data = json.loads((docker_config / "config.json").read_text())
    assert data["psFormat"] == "table" and "keep:1" in data["auths"]
    assert data["auths"]["https://index.docker.io/v1/"]["auth"] == _auth("hub", "secret")
    assert oct(os.stat(docker_config / "config.json").st_mode & 0o777) == "0o600"
    assert config.erase_credentials("docker.io") is True
    assert config.erase_credentials("docker.io") is False
    assert list(json.loads((docker_config / "config.json").read_text())["auths"]) == ["keep:1"]


def test_creds_store_helper_gets_store_and_erase(docker_config, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "helper.log"
    helper = bin_dir / "docker-credential-pbstore"
    helper.write_text(f"#!/bin/sh\necho \"$1 $(cat)\" >> {log}\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "pbstore"}))
    where = config.store_credentials("r.example:5000", config.Credentials("u", "hunter2-secret"))
    assert where == "docker-credential-pbstore"
    first = log.read_text().splitlines()[0]
    action, _, payload = first.partition(" ")
    assert action == "store" and json.loads(payload) == {"ServerURL": "r.example:5000", "Username": "u", "Secret": "hunter2-secret"}
    assert "hunter2" not in (docker_config / "config.json").read_text()  # the helper keeps the password
    config.erase_credentials("r.example:5000")
    assert log.read_text().splitlines()[-1] == "erase r.example:5000"


@pytest.mark.parametrize("header,scheme,params", [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"',
     "bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                "scope": "repository:library/debian:pull"}),
    ('Bearer realm="http://127.0.0.1:1/t",scope="repository:a/b:pull,push"',
     "bearer", {"realm": "http://127.0.0.1:1/t", "scope": "repository:a/b:pull,push"}),
    ('Basic realm="pybuild-test"', "basic", {"realm": "pybuild-test"}),
    ("Basic realm=plain", "basic", {"realm": "plain"}),
])
def test_parse_challenge(header, scheme, params):
    assert parse_challenge(header) == (scheme, params)


@pytest.mark.parametrize("value,expected", [("7", 7.0), ("0", 0.0), ("-3", 0.0), (None, None), ("soon", None),
                                            ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after(value, expected):
    assert _retry_after(value) == expected


@pytest.mark.parametrize("registry,host,loopback", [
    ("docker.io", "registry-1.docker.io", False), ("index.docker.io", "registry-1.docker.io", False),
    ("localhost:5000", "localhost:5000", True), ("127.0.0.1:5000", "127.0.0.1:5000", True),
    ("[::1]:5000", "[::1]:5000", True), ("quay.io", "quay.io", False),
])
def test_hosts(registry, host, loopback):
    assert config.api_host(registry) == host
    assert config.is_loopback(registry) == loopback
