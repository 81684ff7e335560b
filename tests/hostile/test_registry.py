"""A hostile registry (issue 12, item 8): `pybuild pull` from a server on 127.0.0.1 that lies.

The server is a small http.server (tests/registry/regservers.serve) that serves one image from
tests/hostile/hostile_images.Doc and misbehaves per test: a manifest list without platforms, a
token endpoint answering junk, a 307 redirect loop, a Content-Length that lies, an endless body,
wrong digests, malformed configs. Every attack asserts one clear line (no traceback) within a time
limit and a memory cap, nothing written outside the store, and `system check` clean afterwards.

Built on, not repeating: tests/registry/test_faults.py (500/429 retries, cut and corrupted blobs,
a manifest whose bytes do not match its digest or Docker-Content-Digest, eight malformed manifests
by tag) and tests/registry/test_poisoned_diffids.py (a config claiming a known diff_id), both
against Debian's docker-registry behind a fault proxy.
"""
from __future__ import annotations

import json
import threading
import time

import pytest

from hostile_images import OCI_INDEX, Doc, dumps, one_line_error, sha
from regservers import _QuietHandler, serve
from test_archives import MEM_CAP, Box, _peak_rss_of, judge

pytestmark = pytest.mark.registry

REPO_NAME = "hostile"


class Hostile:
    """The fake registry: `routes` maps a path (or "token") to a handler(h) that answers it; the
    default routes serve `doc` honestly (GET /v2/, manifests by tag and digest, blobs)."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.doc = Doc.simple()
        self.requests: list[str] = []
        outer = self

        class Handler(_QuietHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                path = self.path.split("?")[0]
                route = outer.routes.get(path) or outer.routes.get(path.rsplit("/", 1)[0] + "/*")
                if route is not None:
                    return route(self)
                return outer.honest(self, path)
            do_HEAD = do_GET

        self.server, self.host = serve(Handler)
        self.ref = f"{self.host}/{REPO_NAME}:1"

    def honest(self, h, path: str) -> None:
        blobs = self.doc.blobs()
        if path == "/v2/":
            return send(h, 200, b"{}")
        if path.startswith(f"/v2/{REPO_NAME}/manifests/"):
            m = self.doc.manifest_bytes()
            return send(h, 200, m, {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                                    "Docker-Content-Digest": sha(m)})
        if path.startswith(f"/v2/{REPO_NAME}/blobs/"):
            d = path.rsplit("/", 1)[1]
            if d in blobs:
                return send(h, 200, blobs[d], {"Content-Type": "application/octet-stream"})
        return send(h, 404, b'{"errors":[{"code":"NOT_FOUND","message":"no"}]}')

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def send(h, status: int, body: bytes, headers: dict | None = None, length: int | None = None) -> None:
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body) if length is None else length))
    h.end_headers()
    if h.command != "HEAD":
        try:
            h.wfile.write(body)
        except OSError:
            pass
    if length is not None and length != len(body):
        h.close_connection = True


def endless(h, status: int = 200, headers: dict | None = None, piece: bytes = b"A" * 65536, seconds: float = 30) -> None:
    """A chunked body that goes on (for `seconds` at most, so a client that never stops is caught)."""
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    h.close_connection = True
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
    except OSError:
        pass


def redirect_to(target: str):
    def route(h):
        h.send_response(307)
        h.send_header("Location", target)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return route


@pytest.fixture
def hostile():
    server = Hostile()
    yield server
    server.stop()


def pull(box: Box, ref: str, timeout: float = 90):
    """`pybuild pull` as a subprocess, watched: (result, peak RSS, seconds)."""
    import subprocess
    import sys

    from test_archives import REPO

    cmd = [sys.executable, "-m", "builder.cli", "--root", str(box.root), "pull", "-q", ref]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    stop, peak = threading.Event(), []
    watcher = threading.Thread(target=_peak_rss_of, args=(proc, stop, peak), daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += b"\n(killed: the pull did not end within the time limit)"
    stop.set()
    watcher.join()
    return (subprocess.CompletedProcess(cmd, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")),
            max(peak or [0]), time.monotonic() - t0)


def attempt(box: Box, record, attack: str, ref: str, *, may_succeed: bool = False, timeout: float = 90) -> None:
    out, peak, secs = pull(box, ref, timeout)
    problems = []
    if out.returncode == 0:
        if not may_succeed:
            problems.append(f"pulled: {out.stdout.strip()}")
    else:
        why = one_line_error(out)
        if why:
            problems.append(why)
    if peak > MEM_CAP:
        problems.append(f"peak RSS {peak >> 20} MiB")
    if secs > timeout - 5:
        problems.append(f"took {secs:.0f} s")
    judge(record, f"registry: {attack}", problems + box.aftermath())


@pytest.fixture
def box(tmp_path) -> Box:
    return Box(tmp_path)


def _arch() -> str:
    return Doc.simple().config["architecture"]


# --- manifest lists ---------------------------------------------------------------------------------

def _index(hostile: Hostile, entries: list) -> None:
    idx = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    hostile.routes[f"/v2/{REPO_NAME}/manifests/1"] = lambda h: send(
        h, 200, idx, {"Content-Type": OCI_INDEX, "Docker-Content-Digest": sha(idx)})


def _child(hostile: Hostile, **extra) -> dict:
    m = hostile.doc.manifest_bytes()
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(m), "size": len(m), **extra}


INDEX_CASES = {
    "no platforms": lambda s: [_child(s)],
    "platform a string": lambda s: [_child(s, platform="linux/amd64")],
    "platform a list": lambda s: [_child(s, platform=["linux", "amd64"])],
    "platform values numbers": lambda s: [_child(s, platform={"os": 1, "architecture": 2})],
    "platform os null": lambda s: [_child(s, platform={"os": None, "architecture": _arch()})],
    "only other platforms": lambda s: [_child(s, platform={"os": "plan9", "architecture": "mips"})],
    "manifests items not objects": lambda s: [1, "x", None],
    "manifests empty": lambda s: [],
    "child digest malformed": lambda s: [{**_child(s, platform={"os": "linux", "architecture": _arch()}),
                                          "digest": "sha256:../../x"}],
    "child size huge": lambda s: [{**_child(s, platform={"os": "linux", "architecture": _arch()}), "size": 10 ** 30}],
    "child digest names other bytes": lambda s: [{**_child(s, platform={"os": "linux", "architecture": _arch()}),
                                                  "digest": sha(b"something else")}],
    "child descriptor says index over manifest bytes": lambda s: [{**_child(s, platform={"os": "linux", "architecture": _arch()}),
                                            "mediaType": OCI_INDEX}],
}


@pytest.mark.parametrize("case", sorted(INDEX_CASES))
def test_hostile_manifest_list(box, record, hostile, case):
    _index(hostile, INDEX_CASES[case](hostile))
    if case == "child digest names other bytes":
        hostile.routes[f"/v2/{REPO_NAME}/manifests/{sha(b'something else')}"] = lambda h: send(
            h, 200, hostile.doc.manifest_bytes(), {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    # the bytes under the child's digest are a real manifest: verified content, taken as what it is
    attempt(box, record, f"manifest list [{case}]", hostile.ref,
            may_succeed=case == "child descriptor says index over manifest bytes")


# --- configs: malformed where pull reads them -----------------------------------------------------------

CONFIG_CASES = {
    "rootfs missing": lambda c: c.pop("rootfs"),
    "rootfs a string": lambda c: c.__setitem__("rootfs", "layers"),
    "diff_ids a string": lambda c: c["rootfs"].__setitem__("diff_ids", c["rootfs"]["diff_ids"][0]),
    "diff_ids not digests": lambda c: c["rootfs"].__setitem__("diff_ids", [1]),
    "history a string": lambda c: c.__setitem__("history", "x"),
    "history items not objects": lambda c: c.__setitem__("history", [5]),
    "config section a list": lambda c: c.__setitem__("config", []),
    "Env a string": lambda c: c["config"].__setitem__("Env", "PATH=/"),
    "a list, not an object": None,
    "deeply nested": None,
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_malformed_config_from_a_registry(box, record, hostile, case):
    c = json.loads(hostile.doc.config_bytes())
    if case == "a list, not an object":
        hostile.doc.raw_config = b"[1]"
    elif case == "deeply nested":
        hostile.doc.raw_config = b"[" * 100_000 + b"]" * 100_000
    else:
        CONFIG_CASES[case](c)
        hostile.doc.raw_config = dumps(c)
    attempt(box, record, f"malformed config [{case}]", hostile.ref)


@pytest.mark.parametrize("case", ["deeply nested", "huge integer", "layers items not objects", "layer size NaN"])
def test_malformed_manifest_from_a_registry(box, record, hostile, case):
    """What test_faults.py's eight malformed manifests do not cover (parser limits, odd numbers)."""
    m = hostile.doc.manifest()
    raw = {"deeply nested": b"[" * 100_000 + b"]" * 100_000,
           "huge integer": dumps(m).replace(b'"schemaVersion":2', b'"schemaVersion":1' + b"0" * 5000),
           "layers items not objects": dumps({**m, "layers": [1, None]}),
           "layer size NaN": dumps(m).replace(b'"size":', b'"size":NaN,"x":', 1)}[case]
    hostile.doc.raw_manifest = raw
    attempt(box, record, f"malformed manifest [{case}]", hostile.ref)


# --- auth: a token endpoint that answers junk -------------------------------------------------------------

TOKEN_CASES = {
    "not JSON": lambda h: send(h, 200, b"<html>hello</html>"),
    "a JSON list": lambda h: send(h, 200, b'["token"]'),
    "a JSON string": lambda h: send(h, 200, b'"token"'),
    "no token": lambda h: send(h, 200, b'{"expires_in": 60}'),
    "token a number": lambda h: send(h, 200, b'{"token": 12345}'),
    "token an object": lambda h: send(h, 200, b'{"token": {"a": 1}}'),
    "token with a newline (header injection)": lambda h: send(h, 200, b'{"token": "abc\\r\\nX-Evil: 1"}'),
    "expires_in junk": lambda h: send(h, 200, b'{"token": "abc", "expires_in": "soon"}'),
    "expires_in huge": lambda h: send(h, 200, b'{"token": "abc", "expires_in": 1e400}'),
    "deeply nested": lambda h: send(h, 200, b"[" * 100_000 + b"]" * 100_000),
    "500 forever": lambda h: send(h, 500, b"{}"),
    "redirect loop": None,   # filled in: 307 to itself
    "endless body": lambda h: endless(h, 200, {"Content-Type": "application/json"}, b" " * 65536),
    "Content-Length longer than the body": lambda h: send(h, 200, b'{"token": "abc"}', length=100000),
}


@pytest.mark.parametrize("case", sorted(TOKEN_CASES))
def test_token_endpoint_answers_junk(box, record, hostile, case):
    realm = f"http://{hostile.host}/token"

    def challenge(h):
        if "Authorization" in h.headers:   # whatever the junk token was, it is not accepted
            return send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad token"}]}',
                        {"WWW-Authenticate": f'Bearer realm="{realm}",service="hostile"'})
        return send(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}',
                    {"WWW-Authenticate": f'Bearer realm="{realm}",service="hostile"'})
    hostile.routes["/v2/"] = challenge
    hostile.routes[f"/v2/{REPO_NAME}/manifests/*"] = challenge
    hostile.routes["/token"] = TOKEN_CASES[case] or redirect_to(realm)
    attempt(box, record, f"token endpoint [{case}]", hostile.ref, timeout=120)


# --- transport: redirects, lengths, endless bodies ----------------------------------------------------------

def _blob_path(hostile: Hostile) -> str:
    return f"/v2/{REPO_NAME}/blobs/{sha(hostile.doc.layer_blobs()[0])}"


def _manifest_path() -> str:
    return f"/v2/{REPO_NAME}/manifests/1"


TRANSPORT_CASES = {
    "manifest: 307 to itself": lambda s: {_manifest_path(): redirect_to(f"http://{s.host}{_manifest_path()}")},
    "manifest: 307 ping-pong": lambda s: {_manifest_path(): redirect_to(f"http://{s.host}/v2/{REPO_NAME}/manifests/2"),
                                          f"/v2/{REPO_NAME}/manifests/2": redirect_to(f"http://{s.host}{_manifest_path()}")},
    "blob: 307 to itself": lambda s: {_blob_path(s): redirect_to(f"http://{s.host}{_blob_path(s)}")},
    "ping: 307 to itself": lambda s: {"/v2/": redirect_to(f"http://{s.host}/v2/")},
    "manifest: Content-Length longer than the body": lambda s: {_manifest_path(): lambda h: send(
        h, 200, s.doc.manifest_bytes(), {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, length=99999)},
    "manifest: Content-Length shorter than the body": lambda s: {_manifest_path(): lambda h: send(
        h, 200, s.doc.manifest_bytes(), {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, length=10)},
    "blob: Content-Length longer than the body": lambda s: {_blob_path(s): lambda h: send(
        h, 200, s.doc.layer_blobs()[0], length=len(s.doc.layer_blobs()[0]) + 5000)},
    "blob: Content-Length shorter than the body": lambda s: {_blob_path(s): lambda h: send(
        h, 200, s.doc.layer_blobs()[0], length=5)},
    "manifest: endless body": lambda s: {_manifest_path(): lambda h: endless(
        h, 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})},
    "blob: endless body": lambda s: {_blob_path(s): lambda h: endless(h, 200)},
    "config: endless body": lambda s: {f"/v2/{REPO_NAME}/blobs/{sha(s.doc.config_bytes())}": lambda h: endless(h, 200)},
    "ping: endless body": lambda s: {"/v2/": lambda h: endless(h, 200)},
    "404 with an endless error body": lambda s: {_manifest_path(): lambda h: endless(
        h, 404, {"Content-Type": "application/json"}, b" " * 65536)},
    "manifest: a digest header that lies": lambda s: {_manifest_path(): lambda h: send(
        h, 200, s.doc.manifest_bytes(), {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                                          "Docker-Content-Digest": sha(b"other")})},
    "blob: other bytes than its digest": lambda s: {_blob_path(s): lambda h: send(h, 200, b"\x1f\x8b" + b"x" * 40)},
    "config: other bytes than its digest": lambda s: {f"/v2/{REPO_NAME}/blobs/{sha(s.doc.config_bytes())}":
                                                      lambda h: send(h, 200, b'{"rootfs":{}}')},
}


@pytest.mark.parametrize("case", sorted(TRANSPORT_CASES))
def test_hostile_transport(box, record, hostile, case):
    hostile.routes.update(TRANSPORT_CASES[case](hostile))
    # /v2/ only proves the API is there: its body is not read, so an endless one does not matter
    attempt(box, record, f"transport [{case}]", hostile.ref, timeout=120, may_succeed=case == "ping: endless body")


def test_an_honest_pull_from_the_fake_registry_works(box, record, hostile):
    """The control: the same server without a fault serves a pullable image."""
    out, _, _ = pull(box, hostile.ref)
    assert out.returncode == 0, out.stderr
    assert box.aftermath() == []
