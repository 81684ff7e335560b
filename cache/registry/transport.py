"""One registry's HTTP API (distribution spec v2) through a requests Session.

Handles what every call needs and no call should repeat: the base URL (https, or plain http for
loopback and registries marked insecure), authentication on demand (a 401's WWW-Authenticate
names Bearer — fetch a token from its realm for the scopes wanted, as Docker Hub does — or Basic),
tokens cached per scope set until they expire, and retries with exponential backoff on connection
errors, 5xx and 429 (Retry-After honoured). A request whose body cannot be replayed is retried
by the caller (push restarts the upload).
"""
from __future__ import annotations

import json
import re
import time
from typing import Callable, Iterable

from . import config as cfg
from .errors import AuthError, NotFound, RegistryError, TransientError

ATTEMPTS = 5
BACKOFF_START = 0.2     # seconds; doubled after each failed attempt
BACKOFF_MAX = 5.0
RETRY_AFTER_MAX = 60.0
TIMEOUT = (10, 60)      # connect, read (between bytes)
TOKEN_MAX = 1 << 20     # a token answer, or an error body, read into memory: larger is an attack
ERROR_BODY_MAX = 64 << 10
USER_AGENT = "pybuild/0.1"
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^,\s]+)')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in _CHALLENGE.finditer(rest):
        key = (m.group(1) or m.group(3)).lower()
        params[key] = m.group(2) if m.group(1) else m.group(4)
    return scheme.lower(), params


class Client:
    """The API of one registry; `repository` calls are scoped (pull, or pull+push)."""

    def __init__(self, registry: str, *, tls_verify: bool | None = None,
                 credentials: cfg.Credentials | None | str = "auto", sleep: Callable[[float], None] = time.sleep):
        import requests

        self.registry = registry
        self.host = cfg.api_host(registry)
        # As Docker: https first. An insecure registry (loopback, or listed in the registries file)
        # and --tls-verify=false skip certificate checks and fall back to plain http when the
        # registry does not speak TLS; --tls-verify=true verifies even on loopback.
        insecure = tls_verify is False or (tls_verify is None and (
            cfg.is_loopback(registry) or registry in cfg.insecure_registries()))
        self.scheme = "https"
        self.verify = not insecure
        self.plain_http_fallback = insecure
        self._scheme_known = False   # set by the first answer: no more falling back after it
        if insecure:
            import warnings

            from urllib3.exceptions import InsecureRequestWarning

            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        self._check_host()
        self.creds = cfg.credentials(registry) if credentials == "auto" else credentials
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._scheme_auth: str | None = None    # "bearer" | "basic" once the registry has said
        self._challenge: dict[str, str] = {}
        self.sleep = sleep

    # --- URLs ---
    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.scheme}://{self.host}{path}"

    def where(self, repository: str | None = None) -> str:
        return f"{self.registry}/{repository}" if repository else self.registry

    # --- requests ---
    def request(self, method: str, path: str, *, scopes: Iterable[str] = (), headers: dict | None = None,
                data: bytes | Callable[[], object] | None = None, stream: bool = False,
                ok: tuple[int, ...] = (200,), what: str = "", params: dict | None = None,
                allow_redirects: bool = True, retry: bool = True):
        """Send with auth and retries; a status outside `ok` raises a RegistryError naming `what`.
        With retry=False (a body the registry may have half taken) a transient failure raises
        TransientError at once: the caller starts over its own way."""
        import requests

        scopes = tuple(sorted(set(scopes)))
        what = what or f"{method} {path}"
        delay = BACKOFF_START
        authed_once = False
        last_error = ""
        attempt = 0
        attempts = ATTEMPTS if retry else 1
        while attempt < attempts:
            attempt += 1
            h = dict(headers or {})
            auth = self._authorization(scopes)
            if auth:
                h["Authorization"] = auth
            body = data() if callable(data) else data
            used = self.scheme
            try:
                resp = self.session.request(method, self.url(path), headers=h, data=body, stream=stream,
                                            timeout=TIMEOUT, verify=self.verify, params=params,
                                            allow_redirects=allow_redirects)
            except (requests.exceptions.SSLError, requests.exceptions.ConnectionError) as err:
                if self.plain_http_fallback and used == "https" and (self.scheme == "http" or not self._scheme_known):
                    self.scheme = "http"  # the registry speaks plain http (Docker's insecure-registry fallback)
                    attempt -= 1
                    continue
                if _unresolvable(err):  # no name, no registry: retrying will not help
                    raise RegistryError(f"{self.where()}: cannot resolve the host name {self.host.rsplit(':', 1)[0]}",
                                        hint="check the registry's name (and DNS / network access)") from None
                if isinstance(err, requests.exceptions.SSLError):
                    raise RegistryError(f"{self.where()}: TLS error: {err}",
                                        hint="fix the certificate, or pass --tls-verify=false for a registry you trust") from None
                last_error = f"cannot reach {self.url(path)}: {type(err).__name__}"
                self._backoff(delay, attempt if retry else ATTEMPTS)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as err:
                last_error = f"cannot reach {self.url(path)}: {type(err).__name__}"
                self._backoff(delay, attempt if retry else ATTEMPTS)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except requests.exceptions.TooManyRedirects:
                raise RegistryError(f"{self.where(_repository_of(path))}: {what}: too many redirects",
                                    hint="the registry (or a proxy) redirects in a loop") from None
            except requests.exceptions.RequestException as err:  # an invalid header, URL or answer
                raise RegistryError(f"{self.where(_repository_of(path))}: {what}: {type(err).__name__}: "
                                    f"{str(err)[:200]}") from None
            self._scheme_known = True
            if resp.status_code == 401 and not authed_once:
                resp.close()
                authed_once = True
                self._on_challenge(resp.headers.get("WWW-Authenticate", ""), scopes, sent=auth)
                attempt -= 1
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last_error = f"{resp.status_code} {resp.reason}"
                wait = _retry_after(resp.headers.get("Retry-After"))
                resp.close()
                self._backoff(wait if wait is not None else delay, attempt if retry else ATTEMPTS)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if resp.status_code in ok:
                return resp
            raise self._status_error(resp, what, self.where(_repository_of(path)))
        raise TransientError(f"{self.where(_repository_of(path))}: {what}: giving up after {attempts} attempt(s) ({last_error})",
                             hint="check that the registry is up and reachable, then try again")

    def _check_host(self) -> None:
        """A host name the URL parser refuses (e.g. a label over 63 characters) is an error of its own."""
        try:
            self.host.split(":")[0].encode("idna")
        except UnicodeError as err:
            raise RegistryError(f"{self.registry}: not a valid host name ({err})",
                                hint="check the registry part of the image name") from None

    def _backoff(self, seconds: float, attempt: int) -> None:
        if attempt < ATTEMPTS:
            self.sleep(min(seconds, RETRY_AFTER_MAX))

    def _status_error(self, resp, what: str, place: str) -> RegistryError:
        detail = _error_detail(resp)
        resp.close()
        if resp.status_code == 401:
            who = f"as {self.creds.username}" if self.creds else "anonymously"
            return AuthError(f"{place}: {what}: unauthorized {who}{detail}",
                             hint=f"run `pybuild login {self.registry}` with an account that may do this")
        if resp.status_code == 403:
            return AuthError(f"{place}: {what}: denied{detail}", hint="the account lacks the permission")
        if resp.status_code == 404:
            return NotFound(f"{place}: {what}: not found{detail}", hint="check the name, tag or digest")
        return RegistryError(f"{place}: {what}: {resp.status_code} {resp.reason}{detail}")

    # --- auth ---
    def _authorization(self, scopes: tuple[str, ...]) -> str | None:
        if self._scheme_auth == "basic" and self.creds:
            return "Basic " + _basic(self.creds)
        if self._scheme_auth == "bearer":
            token = self._tokens.get(scopes)
            if token is None or token[1] <= time.monotonic():
                token = self._fetch_token(scopes)
            return f"Bearer {token[0]}"
        return None

    def _on_challenge(self, header: str, scopes: tuple[str, ...], sent: str | None = None) -> None:
        """Learn how to log in from a 401. `sent`: the Authorization this request carried (threads
        share the client: another may have learnt Basic while this request went out without it)."""
        scheme, params = parse_challenge(header)
        if scheme == "bearer" and params.get("realm"):
            self._scheme_auth, self._challenge = "bearer", params
            self._tokens.pop(scopes, None)
        elif scheme == "basic":
            if not self.creds:
                raise AuthError(f"{self.where()}: the registry wants a user name and password",
                                hint=f"run `pybuild login {self.registry}`")
            if (sent or "").startswith("Basic "):
                raise AuthError(f"{self.where()}: the registry refused the password of {self.creds.username}",
                                hint=f"run `pybuild login {self.registry}` again")
            self._scheme_auth = "basic"
        else:
            raise AuthError(f"{self.where()}: unauthorized, and the registry names no way to log in "
                            f"(WWW-Authenticate: {header or 'none'})")

    def _fetch_token(self, scopes: tuple[str, ...]) -> tuple[str, float]:
        import requests
        import urllib3

        params = {"service": self._challenge.get("service", "")} if self._challenge.get("service") else {}
        wanted = list(scopes) or ([self._challenge["scope"]] if self._challenge.get("scope") else [])
        query = list(params.items()) + [("scope", s) for s in wanted]
        auth = (self.creds.username, self.creds.password) if self.creds else None
        realm = self._challenge["realm"]
        try:
            resp = self.session.get(realm, params=query, auth=auth, timeout=TIMEOUT, verify=self.verify, stream=True)
        except requests.exceptions.RequestException as err:
            raise AuthError(f"{self.where()}: cannot reach the token service {realm}: {type(err).__name__}") from None
        if resp.status_code in (401, 403):
            who = f"for {self.creds.username}" if self.creds else "anonymously"
            raise AuthError(f"{self.where()}: the token service {realm} refused a token {who}{_error_detail(resp)}",
                            hint=f"run `pybuild login {self.registry}` with valid credentials")
        if resp.status_code != 200:
            raise AuthError(f"{self.where()}: token service {realm}: {resp.status_code} {resp.reason}")
        try:
            with resp:
                body = resp.raw.read(TOKEN_MAX + 1, decode_content=True)
            if len(body) > TOKEN_MAX:
                raise AuthError(f"{self.where()}: token service {realm} answered more than {TOKEN_MAX} bytes")
            doc = json.loads(body)
        except (ValueError, RecursionError, OSError, requests.exceptions.RequestException,
                urllib3.exceptions.HTTPError):
            raise AuthError(f"{self.where()}: token service {realm} answered no JSON") from None
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not token:
            raise AuthError(f"{self.where()}: token service {realm} answered no token")
        if not isinstance(token, str) or not token.isprintable() or " " in token:
            raise AuthError(f"{self.where()}: token service {realm} answered a token that is not a token string")
        # expires_in defaults to 60 s (the token spec); renewed a little early (a tenth, at most 5 s)
        try:
            lifetime = max(float(doc.get("expires_in") or 60), 1.0)
        except (TypeError, ValueError):
            lifetime = 60.0
        entry = (token, time.monotonic() + lifetime - min(5.0, lifetime / 10))
        self._tokens[scopes] = entry
        return entry

    def ping(self) -> None:
        """GET /v2/ with auth: proves the registry speaks v2 and accepts the credentials."""
        try:
            self.request("GET", "/v2/", what="GET /v2/", stream=True).close()  # its body is not read
        except NotFound:
            raise RegistryError(f"{self.registry}: no registry API here (GET /v2/ answered 404)",
                                hint="check the host and port: pybuild speaks the OCI distribution API v2") from None


def _unresolvable(err: Exception) -> bool:
    from urllib3.exceptions import NameResolutionError

    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, NameResolutionError)


def _repository_of(path: str) -> str | None:
    """The repository a /v2/<name>/(manifests|blobs|tags)/... URL is about, for error messages."""
    m = re.search(r"/v2/(.+?)/(?:manifests|blobs|tags)/", path)
    return m.group(1) if m else None


def scope(repository: str, actions: str = "pull") -> str:
    return f"repository:{repository}:{actions}"


def _basic(creds: cfg.Credentials) -> str:
    import base64

    return base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _error_detail(resp) -> str:
    """The first message of a distribution error body ({"errors": [{code, message}]}), if any."""
    try:
        if getattr(resp, "_content", False) is False:   # a streamed body: read only its head
            body = resp.raw.read(ERROR_BODY_MAX, decode_content=True)
        else:
            body = resp.content[:ERROR_BODY_MAX]
        errors = json.loads(body).get("errors") or []
    except Exception:  # noqa: BLE001 - any body at all (cut, endless, not JSON, too deep): no detail
        return ""
    if errors and isinstance(errors[0], dict):
        e = errors[0]
        return f" ({e.get('code', '')}: {e.get('message', '')})".replace("(: ", "(")
    return ""
