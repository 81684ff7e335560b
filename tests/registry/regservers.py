"""Real registries for the tests, and what stands in front of them.

- `start_registry`: Debian's docker-registry (distribution 2.8) on 127.0.0.1, temp storage, a
  generated config; optionally behind htpasswd Basic auth.
- `TokenServer` + `BearerProxy`: Docker Hub's scheme — the registry side answers 401 with
  `WWW-Authenticate: Bearer realm=...,service=...,scope=...` until a token for the right scope is
  presented; the token service hands out `token` (or `access_token`) with `expires_in`.
- `FaultProxy`: forwards to a registry and injects faults on the requests a rule matches:
  a status (500, 429 + Retry-After), a truncated body, a corrupted byte, a replaced body, a slow
  stream. It also keeps a log of the requests it saw.
Every server here is an http.server in a daemon thread (or the registry's process, stopped by PID).
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-authorization", "proxy-authenticate",
              "te", "trailer", "upgrade"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RegistryProcess:
    host: str           # 127.0.0.1:PORT
    proc: subprocess.Popen
    storage: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def self_signed(workdir: str, host: str = "127.0.0.1") -> tuple[str, str]:
    """(certificate, key) for `host`, made with openssl, valid one day."""
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=IP:{host}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def start_registry(workdir: str, htpasswd: str | None = None, tls: tuple[str, str] | None = None) -> RegistryProcess:
    port = free_port()
    storage = os.path.join(workdir, "storage")
    os.makedirs(storage, exist_ok=True)
    auth = (f"auth:\n  htpasswd:\n    realm: pybuild-test\n    path: {htpasswd}\n" if htpasswd else "")
    tls_conf = f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else ""
    config = os.path.join(workdir, "config.yml")
    with open(config, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
                f"http:\n  addr: 127.0.0.1:{port}\n{tls_conf}{auth}")
    log = open(os.path.join(workdir, "registry.log"), "wb")
    proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", config], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    log.close()
    reg = RegistryProcess(f"127.0.0.1:{port}", proc, storage)
    deadline = time.monotonic() + 20
    while True:
        try:
            scheme = "https" if tls else "http"
            urllib.request.urlopen(f"{scheme}://{reg.host}/v2/", timeout=1, context=_unverified()).close()
            return reg
        except urllib.error.HTTPError as err:
            if err.code == 401:
                return reg
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            reg.stop()
            raise RuntimeError(f"docker-registry did not start: {open(os.path.join(workdir, 'registry.log')).read()}")
        time.sleep(0.05)


def _unverified():
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_htpasswd(path: str, user: str, password: str) -> None:
    subprocess.run(["htpasswd", "-B", "-b", "-c", path, user, password], check=True, capture_output=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as registries speak

    def log_message(self, *args):
        pass


def serve(handler_cls) -> tuple[_Server, str]:
    server = _Server(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


def read_request_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = b""
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return out
            out += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


# --- Bearer tokens ---------------------------------------------------------------------------

class TokenServer:
    """GET /token?service=&scope=...: a token for those scopes (push only with the right password)."""

    def __init__(self, users: dict[str, str], *, field_name: str = "token", expires_in: int = 300):
        self.users = users
        self.field_name = field_name
        self.expires_in = expires_in
        self.tokens: dict[str, tuple[set[str], float]] = {}
        self.requests: list[dict] = []
        outer = self

        class Handler(_QuietHandler):
            def do_GET(self):
                q = parse_qs(urlsplit(self.path).query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if outer.users.get(u) != p:
                        return self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad password"}]})
                    user = u
                outer.requests.append({"user": user, "scope": q.get("scope", []), "service": q.get("service")})
                granted = set()
                for s in q.get("scope", []):
                    kind, _, rest = s.partition(":")
                    name, _, actions = rest.rpartition(":")
                    for a in actions.split(","):
                        if a == "pull" or user:
                            granted.add(f"{name}:{a}")
                token = secrets.token_hex(16)
                outer.tokens[token] = (granted, time.monotonic() + outer.expires_in)
                self._send(200, {outer.field_name: token, "expires_in": outer.expires_in})

            def _send(self, code, doc):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server, self.host = serve(Handler)

    def allows(self, token: str, need: str | None) -> bool:
        granted, until = self.tokens.get(token, (set(), 0.0))
        return until > time.monotonic() and (need is None or need in granted)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- proxies -----------------------------------------------------------------------------------

@dataclass
class Fault:
    match: str                  # regex against "METHOD /path?query"
    kind: str                   # status | truncate | corrupt | replace | slow | redirect | drop-range
    arg: object = None          # status code, bytes kept, new body, seconds per chunk
    times: int | None = 1       # None: every matching request
    headers: dict = field(default_factory=dict)


class Proxy:
    """Forwards every request to `upstream` (host:port), keeping the Host header, so the registry's
    Location URLs point back at the proxy. Subclasses decide per request (`intercept`)."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.log: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(_QuietHandler):
            def handle_one(self):
                body = read_request_body(self)
                outer.log.append((self.command, self.path, dict(self.headers)))
                if outer.intercept(self, body):
                    return
                outer.forward(self, body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self.server, self.host = serve(Handler)

    def intercept(self, h: BaseHTTPRequestHandler, body: bytes) -> bool:
        return False

    def forward(self, h: BaseHTTPRequestHandler, body: bytes, fault: Fault | None = None) -> None:
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        skip = {"content-length", *(["range"] if fault and fault.kind == "drop-range" else [])}
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() not in skip}
        if body or h.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        conn.request(h.command, h.path, body=body, headers=headers)
        resp = conn.getresponse()
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        if h.command == "HEAD":
            h.send_response(resp.status)
            for k, v in out_headers:
                h.send_header(k, v)
            h.end_headers()
            conn.close()
            return
        data = resp.read()
        conn.close()
        dropped = {"content-length", *(k.lower() for k in (fault.headers if fault else {}))}
        out_headers = [(k, v) for k, v in out_headers if k.lower() not in dropped]
        out_headers += [(k, v) for k, v in (fault.headers if fault else {}).items() if v]  # "" drops a header
        if fault and fault.kind == "corrupt" and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        if fault and fault.kind == "replace":
            data = fault.arg
        h.send_response(resp.status)
        for k, v in out_headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if fault and fault.kind == "truncate":
            h.wfile.write(data[: int(fault.arg if fault.arg is not None else len(data) // 2)])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault and fault.kind == "slow":
            for i in range(0, len(data), 65536):
                h.wfile.write(data[i:i + 65536])
                h.wfile.flush()
                time.sleep(float(fault.arg))
            return
        h.wfile.write(data)

    def requests(self, method: str | None = None, pattern: str = "") -> list[tuple[str, str, dict]]:
        return [r for r in self.log if (method is None or r[0] == method) and re.search(pattern, r[1])]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class FaultProxy(Proxy):
    def __init__(self, upstream: str):
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        super().__init__(upstream)

    def add(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def clear(self) -> None:
        self.faults.clear()
        self.log.clear()

    def _take(self, h) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if re.search(f.match, f"{h.command} {h.path}") and (f.times is None or f.times > 0):
                    if f.times is not None:
                        f.times -= 1
                    return f
        return None

    def intercept(self, h, body: bytes) -> bool:
        fault = self._take(h)
        if fault is None:
            return False
        if fault.kind == "redirect":  # as Docker Hub sends blobs to a CDN: 307 to another host
            h.send_response(307)
            h.send_header("Location", f"http://{self.upstream}{h.path}")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return True
        if fault.kind == "status":
            body = json.dumps({"errors": [{"code": "FAULT", "message": f"injected {fault.arg}"}]}).encode()
            h.send_response(int(fault.arg))
            for k, v in fault.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)) if h.command != "HEAD" else "0")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
            return True
        self.forward(h, body, fault)
        return True


class BearerProxy(Proxy):
    """The registry side of Docker Hub's token auth, in front of an open registry."""

    def __init__(self, upstream: str, tokens: TokenServer, service: str = "pybuild-test"):
        self.tokens = tokens
        self.service = service
        super().__init__(upstream)

    def intercept(self, h, body: bytes) -> bool:
        m = re.match(r"/v2/(.+?)/(manifests|blobs|tags)/", urlsplit(h.path).path)
        need = None
        challenge = f'Bearer realm="http://{self.tokens.host}/token",service="{self.service}"'
        if m:
            action = "pull" if h.command in ("GET", "HEAD") else "push"
            need = f"{m.group(1)}:{action}"
            challenge += f',scope="repository:{m.group(1)}:{"pull" if action == "pull" else "pull,push"}"'
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and self.tokens.allows(auth[7:], need):
            return False
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
        h.send_response(401)
        h.send_header("WWW-Authenticate", challenge)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
        return True
