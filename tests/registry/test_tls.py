"""TLS: a registry with a self-signed certificate on 127.0.0.1. As Docker, loopback is trusted
without verification (https first, plain http when the registry has no TLS); --tls-verify=true
verifies even there, and passes with the certificate in the CA bundle."""
from __future__ import annotations

import pytest

from cache.registry import RegistryError
from cache.registry.puller import pull
from cache.registry.pusher import push
from cache.registry.transport import Client
from cache.store import Store
from reghelpers import _long_lived, tiny_image
from regservers import self_signed, start_registry

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def tls_registry(request, tmp_path_factory):
    work = tmp_path_factory.mktemp("tls-registry")
    cert, key = self_signed(str(work))
    reg = start_registry(str(work), tls=(cert, key))
    _long_lived(request, reg.proc.pid)
    request.addfinalizer(reg.stop)
    return reg, cert


@pytest.fixture
def image(tmp_path):
    store = Store.open(str(tmp_path / "src"))
    return store, tiny_image(store, None, {"etc/tls": b"over https\n"})


def test_loopback_speaks_https_when_the_registry_does(tls_registry, image, tmp_path):
    reg, _ = tls_registry
    store, img = image
    client = Client(reg.host)
    digest = push(store, img, f"{reg.host}/tls/app:1", client=client)
    assert client.scheme == "https"
    assert pull(Store.open(str(tmp_path / "dst")), f"{reg.host}/tls/app:1").digest == digest


def test_loopback_falls_back_to_plain_http(registry, image):
    store, img = image
    client = Client(registry.host)
    push(store, img, f"{registry.host}/plain/app:1", client=client)
    assert client.scheme == "http"


def test_verification_asked_for_refuses_a_self_signed_certificate(tls_registry, image):
    reg, _ = tls_registry
    store, img = image
    with pytest.raises(RegistryError) as err:
        push(store, img, f"{reg.host}/tls/app:2", client=Client(reg.host, tls_verify=True))
    assert "TLS" in str(err.value) and "--tls-verify=false" in str(err.value) and reg.host in str(err.value)


def test_verification_passes_with_the_certificate_trusted(tls_registry, image, monkeypatch):
    reg, cert = tls_registry
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    store, img = image
    client = Client(reg.host, tls_verify=True)
    assert push(store, img, f"{reg.host}/tls/app:3", client=client).startswith("sha256:")
    assert client.scheme == "https" and client.verify is True


def test_verified_https_never_falls_back_to_http(registry, image):
    store, img = image
    with pytest.raises(RegistryError) as err:
        push(store, img, f"{registry.host}/plain/app:2", client=Client(registry.host, tls_verify=True))
    assert "TLS" in str(err.value)
