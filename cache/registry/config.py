"""Where credentials and registry settings come from, in the files Docker and podman users have.

Credentials: Docker's config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json):
`auths` (base64 user:password in `auth`, or `identitytoken`), `credHelpers` per registry and
`credsStore` for all, run as `docker-credential-<name> get|store|erase` exactly as Docker does.
`pybuild login` / `logout` write the same file (mode 0600), so docker and pybuild share logins.

Insecure registries (as Docker): localhost, 127.0.0.0/8 and ::1 are reached over https without
certificate checks, or plain http when they do not speak TLS. Others are listed in a registries file
($PYBUILD_REGISTRIES_CONF, else /etc/pybuild/registries.toml), in the shape of
containers-registries.conf:

    [[registry]]
    location = "registry.lan:5000"
    insecure = true
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass

from .errors import AuthError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
DEFAULT_REGISTRIES_CONF = "/etc/pybuild/registries.toml"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def api_host(registry: str) -> str:
    """The host that serves /v2/ for a reference's registry (Docker Hub's API lives elsewhere)."""
    return DOCKER_HUB_API if registry in (DOCKER_HUB, "index.docker.io") else registry


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    return host == "localhost" or host.startswith("127.") or host == "::1"


def insecure_registries() -> set[str]:
    path = os.environ.get("PYBUILD_REGISTRIES_CONF") or DEFAULT_REGISTRIES_CONF
    try:
        with open(path, "rb") as f:
            import tomllib

            data = tomllib.load(f)
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as err:
        from .errors import RegistryError

        raise RegistryError(f"{path}: cannot read the registries file: {err}",
                            hint="fix its TOML: [[registry]] tables with location and insecure") from None
    return {r["location"] for r in data.get("registry", []) if r.get("insecure") and r.get("location")}


def docker_config_path() -> str:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def _read_config() -> dict:
    path = docker_config_path()
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise AuthError(f"{path}: cannot read: {err}", hint="fix or remove the file, then `pybuild login` again") from None


def _auth_keys(registry: str) -> list[str]:
    if registry in (DOCKER_HUB, "index.docker.io", DOCKER_HUB_API):
        return [DOCKER_HUB_AUTH_KEY, "index.docker.io", DOCKER_HUB, "https://index.docker.io/v1"]
    return [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/", f"https://{registry}/v2/"]


def _helper_for(config: dict, registry: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    for key in _auth_keys(registry):
        if key in helpers:
            return helpers[key]
    return config.get("credsStore") or None


def _run_helper(helper: str, action: str, data: str) -> str:
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run([program, action], input=data, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise AuthError(f"credential helper {program} (named in {docker_config_path()}) is not installed",
                        hint="install it, or remove credsStore/credHelpers from the file") from None
    if done.returncode != 0:
        message = (done.stdout or done.stderr).strip()
        if action == "get" and "credentials not found" in message.lower():
            return ""
        raise AuthError(f"{program} {action} failed: {message}")
    return done.stdout


def credentials(registry: str) -> Credentials | None:
    """The stored credentials for a registry, or None (anonymous)."""
    config = _read_config()
    helper = _helper_for(config, registry)
    if helper:
        key = DOCKER_HUB_AUTH_KEY if registry in (DOCKER_HUB, DOCKER_HUB_API) else registry
        out = _run_helper(helper, "get", key)
        if out.strip():
            doc = json.loads(out)
            return Credentials(doc.get("Username", ""), doc.get("Secret", ""))
    auths = config.get("auths") or {}
    for key in _auth_keys(registry):
        entry = auths.get(key)
        if not entry:
            continue
        if entry.get("identitytoken"):
            return Credentials("<token>", entry["identitytoken"])
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except ValueError:
                raise AuthError(f"{docker_config_path()}: the auth entry for {key} is not base64 user:password",
                                hint=f"run `pybuild login {registry}` again") from None
            return Credentials(user, password)
        if entry.get("username"):
            return Credentials(entry["username"], entry.get("password", ""))
    return None


def store_credentials(registry: str, creds: Credentials) -> str:
    """Save as Docker does (a helper if configured, else base64 in config.json). Returns where."""
    config = _read_config()
    key = DOCKER_HUB_AUTH_KEY if registry in (DOCKER_HUB, DOCKER_HUB_API) else registry
    helper = _helper_for(config, registry)
    if helper:
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": creds.username, "Secret": creds.password}))
        config.setdefault("auths", {})[key] = {}
        where = f"docker-credential-{helper}"
    else:
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        config.setdefault("auths", {})[key] = {"auth": token}
        where = docker_config_path()
    _write_config(config)
    return where


def erase_credentials(registry: str) -> bool:
    config = _read_config()
    helper = _helper_for(config, registry)
    auths = config.get("auths") or {}
    found = False
    for key in _auth_keys(registry):
        if key in auths:
            del auths[key]
            found = True
    if helper:
        key = DOCKER_HUB_AUTH_KEY if registry in (DOCKER_HUB, DOCKER_HUB_API) else registry
        _run_helper(helper, "erase", key)
    if found:
        _write_config(config)
    return found


def _write_config(config: dict) -> None:
    path = docker_config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(config, f, indent="\t")
        f.write("\n")
    os.replace(tmp, path)
