"""Registry fixtures: real docker-registry processes (open, and behind htpasswd), a Bearer token
service with its 401-answering proxy, a fault-injecting proxy, and the stores that seed them.
The session's base image (the cached debootstrap tarball as debian:bookworm) is pushed once."""
from __future__ import annotations

import io
import os
import sys
import tarfile
from dataclasses import dataclass

import pytest

from regservers import BearerProxy, FaultProxy, RegistryProcess, TokenServer, make_htpasswd, start_registry

from reghelpers import PASSWORD, USER, _long_lived, tar_of, tiny_image  # noqa: F401 - fixtures use them


def _registry(request, tmp_path_factory, name: str, htpasswd: bool) -> RegistryProcess:
    work = tmp_path_factory.mktemp(name)
    path = None
    if htpasswd:
        path = str(work / "htpasswd")
        make_htpasswd(path, USER, PASSWORD)
    reg = start_registry(str(work), path)
    _long_lived(request, reg.proc.pid)
    request.addfinalizer(reg.stop)
    return reg


@pytest.fixture(scope="session")
def registry(request, tmp_path_factory) -> RegistryProcess:
    """An open registry on 127.0.0.1 (plain http, as Docker treats loopback)."""
    return _registry(request, tmp_path_factory, "registry", False)


@pytest.fixture(scope="session")
def basic_registry(request, tmp_path_factory) -> RegistryProcess:
    """A registry behind htpasswd (bcrypt) Basic auth: USER / PASSWORD."""
    return _registry(request, tmp_path_factory, "basic-registry", True)


@pytest.fixture(scope="session")
def token_server():
    server = TokenServer({USER: PASSWORD})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bearer_registry(registry, token_server):
    """Docker Hub's scheme in front of the open registry: 401 + Bearer challenge until a token."""
    proxy = BearerProxy(registry.host, token_server)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def _fault_proxy(registry):
    proxy = FaultProxy(registry.host)
    yield proxy
    proxy.stop()


@pytest.fixture
def faults(_fault_proxy):
    """The fault proxy in front of the open registry, with no faults and an empty log."""
    _fault_proxy.clear()
    yield _fault_proxy
    _fault_proxy.clear()


@pytest.fixture(autouse=True)
def docker_config(tmp_path, monkeypatch):
    """Each test has its own empty Docker config dir (never root's ~/.docker)."""
    d = tmp_path / "docker-config"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    monkeypatch.delenv("PYBUILD_REGISTRIES_CONF", raising=False)
    return d


@dataclass(frozen=True)
class Seed:
    store: object
    base: object          # the local debian:bookworm Image
    remote: str           # 127.0.0.1:PORT/debian:bookworm
    digest: str           # its manifest digest in the registry


@pytest.fixture(scope="session")
def seed(tmp_path_factory, base_tarball, registry) -> Seed:
    """A store with the debootstrap base as debian:bookworm, pushed once to the open registry."""
    from builder.debootstrap import _labels, commit_tree
    from cache.registry import push
    from cache.store import Store

    store = Store.open(str(tmp_path_factory.mktemp("seed") / "store"))
    with open(base_tarball, "rb") as f:
        base = commit_tree(store, f, "debian:bookworm", _labels("bookworm", "minbase", None, None, None), "test")
    remote = f"{registry.host}/debian:bookworm"
    digest = push(store, base, remote)
    return Seed(store, base, remote, digest)


@pytest.fixture
def clean_store(tmp_path):
    from cache.store import Store

    return Store.open(str(tmp_path / "clean"))


@pytest.fixture
def pybuild(tmp_path):
    """Run the CLI as a real subprocess: pybuild(*args, input=None, root=...) -> CompletedProcess."""
    import subprocess

    def run(*args, input=None, root=None, check=False):
        cmd = [sys.executable, "-m", "builder.cli", "--root", str(root or tmp_path / "cli-store"), *args]
        return subprocess.run(cmd, input=input, capture_output=True, text=True, check=check,
                              env={**os.environ})

    return run
