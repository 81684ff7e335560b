"""Authentication: Bearer tokens (Docker Hub's scheme: 401 + WWW-Authenticate, a token service
giving `token` or `access_token`), Basic (htpasswd), Docker's config.json and credential helpers,
`pybuild login` / `logout`."""
from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from cache.registry import AuthError, pull, push
from cache.store import Store
from reghelpers import PASSWORD, USER, tiny_image
from regservers import BearerProxy, TokenServer

pytestmark = pytest.mark.registry


def _login_file(docker_config, host, user=USER, password=PASSWORD):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {host: {"auth": token}}}))


@pytest.fixture
def image(tmp_path):
    store = Store.open(str(tmp_path / "src"))
    return store, tiny_image(store, None, {"etc/motd": b"hello from a tiny image\n"})


# --- Bearer ---

def test_bearer_push_with_credentials_then_anonymous_pull(bearer_registry, token_server, docker_config, image, tmp_path):
    store, img = image
    ref = f"{bearer_registry.host}/team/app:1"
    _login_file(docker_config, bearer_registry.host)
    digest = push(store, img, ref)
    pushes = [r for r in token_server.requests if any(s.endswith(":pull,push") for s in r["scope"])]
    assert pushes and all(r["user"] == USER and r["service"] == ["pybuild-test"] for r in pushes)
    (docker_config / "config.json").unlink()
    token_server.requests.clear()
    got = pull(Store.open(str(tmp_path / "dst")), ref)
    assert got.digest == digest
    assert token_server.requests and all(r["user"] is None for r in token_server.requests)
    # one token per scope set, reused while it lives (expires_in 300)
    scopes = [tuple(r["scope"]) for r in token_server.requests]
    assert len(scopes) == len(set(scopes))


def test_bearer_push_anonymously_is_refused_clearly(bearer_registry, image):
    store, img = image
    with pytest.raises(AuthError) as err:
        push(store, img, f"{bearer_registry.host}/team/anon:1")
    msg = str(err.value)
    assert bearer_registry.host in msg and "team/anon" in msg and "login" in msg


def test_bearer_wrong_password_is_a_clear_error(bearer_registry, docker_config, image):
    store, img = image
    _login_file(docker_config, bearer_registry.host, password="wrong")
    with pytest.raises(AuthError) as err:
        push(store, img, f"{bearer_registry.host}/team/app:2")
    assert "refused" in str(err.value) and USER in str(err.value)


def test_token_service_answering_access_token(registry, docker_config, image, tmp_path):
    tokens = TokenServer({USER: PASSWORD}, field_name="access_token", expires_in=3600)
    proxy = BearerProxy(registry.host, tokens)
    try:
        store, img = image
        _login_file(docker_config, proxy.host)
        digest = push(store, img, f"{proxy.host}/oauth/app:1")
        assert pull(Store.open(str(tmp_path / "dst")), f"{proxy.host}/oauth/app:1").digest == digest
        assert tokens.requests
    finally:
        proxy.stop()
        tokens.stop()


# --- Basic + config.json ---

def test_basic_without_credentials_says_to_log_in(basic_registry, clean_store):
    with pytest.raises(AuthError) as err:
        pull(clean_store, f"{basic_registry.host}/x:1")
    assert basic_registry.host in str(err.value) and "pybuild login" in str(err.value)


def test_login_push_pull_logout_via_cli(basic_registry, docker_config, pybuild, image, tmp_path):
    store, img = image
    store.tag("local/app:1", img)
    root = store.root
    out = pybuild("login", "-u", USER, "--password-stdin", basic_registry.host, input=PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    path = docker_config / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())["auths"][basic_registry.host]["auth"]
    assert base64.b64decode(saved).decode() == f"{USER}:{PASSWORD}"
    out = pybuild("push", "-q", "local/app:1", f"{basic_registry.host}/app:1", root=root)
    assert out.returncode == 0, out.stderr
    digest = out.stdout.strip().splitlines()[-1]
    out = pybuild("pull", "-q", f"{basic_registry.host}/app:1", root=tmp_path / "other")
    assert out.returncode == 0, out.stderr
    out = pybuild("logout", basic_registry.host)
    assert out.returncode == 0 and basic_registry.host not in json.loads(path.read_text()).get("auths", {})
    out = pybuild("pull", f"{basic_registry.host}/app:1", root=tmp_path / "third")
    assert out.returncode == 1 and "login" in out.stderr
    assert digest.startswith("sha256:")


def test_login_with_a_wrong_password_fails_and_saves_nothing(basic_registry, docker_config, pybuild):
    out = pybuild("login", "-u", USER, "-p", "not-it", basic_registry.host)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and basic_registry.host in out.stderr and USER in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 2
    assert not (docker_config / "config.json").exists()


def test_login_usage_errors_exit_2(pybuild, basic_registry):
    out = pybuild("login", "-u", USER, "-p", "x", "--password-stdin", basic_registry.host, input="y\n")
    assert out.returncode == 2


def test_credential_helper_supplies_the_password(basic_registry, docker_config, image, tmp_path, monkeypatch):
    """credHelpers: docker-credential-<name> get, the registry on stdin, JSON on stdout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    helper = bin_dir / "docker-credential-pbtest"
    helper.write_text("#!/bin/sh\nread server\necho \"$1 $server\" >> %s\n"
                      "[ \"$1\" = get ] && printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$server\"\n"
                      "exit 0\n" % (calls, USER, PASSWORD))
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (docker_config / "config.json").write_text(json.dumps({"credHelpers": {basic_registry.host: "pbtest"}}))
    store, img = image
    digest = push(store, img, f"{basic_registry.host}/helped:1")
    assert digest.startswith("sha256:")
    assert f"get {basic_registry.host}" in calls.read_text()


def test_missing_credential_helper_is_named(basic_registry, docker_config, image):
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "nosuchhelper"}))
    store, img = image
    with pytest.raises(AuthError) as err:
        push(store, img, f"{basic_registry.host}/helped:2")
    assert "docker-credential-nosuchhelper" in str(err.value)


def test_registries_conf_marks_a_registry_insecure(tmp_path, monkeypatch):
    from cache.registry import config

    conf = tmp_path / "registries.toml"
    conf.write_text('[[registry]]\nlocation = "registry.lan:5000"\ninsecure = true\n')
    monkeypatch.setenv("PYBUILD_REGISTRIES_CONF", str(conf))
    assert config.insecure_registries() == {"registry.lan:5000"}
    from cache.registry.transport import Client

    def insecure(registry, tls_verify=None):
        client = Client(registry, tls_verify=tls_verify)
        return (client.verify, client.plain_http_fallback)

    assert insecure("registry.lan:5000") == (False, True)        # listed: unverified, http fallback
    assert insecure("registry.example:5000") == (True, False)    # others: verified https only
    assert insecure("localhost:5000") == (False, True)            # loopback: as Docker
    assert insecure("registry.example:5000", False) == (False, True)
    assert insecure("localhost:5000", True) == (True, False)


def test_expired_tokens_are_renewed(registry, image, tmp_path):
    """expires_in honoured: a 2 s token is reused, then fetched again once it has run out."""
    import time

    from cache.registry.puller import pull as pull_with
    from cache.registry.transport import Client

    tokens = TokenServer({USER: PASSWORD}, expires_in=2)
    proxy = BearerProxy(registry.host, tokens)
    try:
        store, img = image
        ref = f"{proxy.host}/short/app:1"
        client = Client(proxy.host, credentials=None)
        push(store, img, f"{registry.host}/short/app:1")
        dst = Store.open(str(tmp_path / "dst"))
        pull_with(dst, ref, client=client)
        first = len(tokens.requests)
        pull_with(dst, ref, client=client)
        assert len(tokens.requests) == first  # still valid: reused
        time.sleep(2.1)
        pull_with(dst, ref, client=client)
        assert len(tokens.requests) > first
    finally:
        proxy.stop()
        tokens.stop()


@pytest.mark.parametrize("password,code", [(PASSWORD, 0), ("wrong", 1)])
def test_login_against_a_token_service(bearer_registry, token_server, docker_config, pybuild, password, code):
    """Docker Hub's way: /v2/ answers 401 Bearer; the password is checked by the token service."""
    out = pybuild("login", "-u", USER, "--password-stdin", bearer_registry.host, input=password)
    assert out.returncode == code, out.stderr
    saved = (docker_config / "config.json").exists()
    assert saved == (code == 0)
    if code:
        assert "refused" in out.stderr and USER in out.stderr
