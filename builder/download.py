"""ADD of an http(s) URL: downloaded with requests, `--checksum=sha256:...` verified, redirects
followed only within http/https (never to file: or another scheme)."""
from __future__ import annotations

import hashlib
import os
import posixpath
import socket
from urllib.parse import urljoin, urlsplit

from grammar.errors import PybuildError

_REACH_HINT = "check the URL, and that this machine can reach that host"


class DownloadError(PybuildError):
    """A URL that cannot be fetched, redirects to another scheme, or fails its --checksum."""


def fetch(url: str, dest_file: str, checksum: str | None, max_redirects: int = 10, where: str = "") -> str:
    """Download `url` into `dest_file`; returns the sha256 digest of what was written.
    `where` (FILE:LINE:COL of the ADD) starts every error message."""
    import requests

    what = f"{where}: ADD {url}" if where else f"ADD {url}"
    current = url
    for _ in range(max_redirects + 1):
        if urlsplit(current).scheme not in ("http", "https"):
            raise DownloadError(f"{what}: redirected to {current!r}, which is not http(s)")
        try:
            resp = requests.get(current, stream=True, allow_redirects=False, timeout=60)
            if resp.is_redirect:
                current = urljoin(current, resp.headers["Location"])
                resp.close()
                continue
            if resp.status_code != 200:
                resp.close()
                raise DownloadError(f"{what}: HTTP {resp.status_code} {resp.reason or ''}".rstrip(),
                                    hint="check the URL")
            h = hashlib.sha256()
            with resp, open(dest_file, "wb") as f:
                for chunk in resp.iter_content(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
        except requests.RequestException as err:
            raise DownloadError(f"{what}: {_reason(err, urlsplit(current))}", hint=_REACH_HINT) from err
        except OSError as err:  # writing the download
            raise DownloadError(f"{what}: cannot write the download: {err.strerror or err}",
                                hint="check the free space of pybuild's store") from err
        digest = "sha256:" + h.hexdigest()
        if checksum and checksum != digest:
            os.unlink(dest_file)
            raise DownloadError(f"{what}: --checksum {checksum} does not match the download ({digest})",
                                hint="update the checksum or the URL")
        return digest
    raise DownloadError(f"{what}: more than {max_redirects} redirects")


def _reason(err: Exception, url) -> str:
    """What failed, in a few words, from requests' exception and the urllib3/socket errors under it."""
    import requests

    host = url.hostname or url.netloc
    place = f"{host}:{url.port}" if url.port else host
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return f"timed out connecting to {place}"
    if isinstance(err, requests.exceptions.Timeout):
        return f"timed out reading from {place}"
    if isinstance(err, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return f"invalid URL ({err})"
    for cause in _causes(err):
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host {host!r} ({cause.strerror or cause})"
        if isinstance(cause, OSError) and cause.strerror and not isinstance(cause, socket.timeout):
            return f"cannot connect to {place}: {cause.strerror}"
    if isinstance(err, requests.exceptions.SSLError):
        return f"TLS error with {place}"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return f"the connection to {place} broke during the download"
    if isinstance(err, requests.exceptions.ConnectionError):
        return f"cannot connect to {place}"
    return f"the download failed ({type(err).__name__})"


def _causes(err: BaseException):
    """err and what it wraps: __cause__/__context__, urllib3's `.reason`, requests' first argument."""
    seen: set[int] = set()
    todo: list[object] = [err]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *(e.args[:1] if e.args else ())]


def file_name(url: str) -> str:
    return posixpath.basename(urlsplit(url).path) or "index.html"
