"""ADD of an http(s) URL: downloaded with requests, `--checksum=sha256:...` verified, redirects
followed only within http/https (never to file: or another scheme)."""
from __future__ import annotations

import hashlib
import os
import posixpath
from urllib.parse import urljoin, urlsplit

from grammar.errors import PybuildError


class DownloadError(PybuildError):
    """A URL that cannot be fetched, redirects to another scheme, or fails its --checksum."""


def fetch(url: str, dest_file: str, checksum: str | None, max_redirects: int = 10) -> str:
    """Download `url` into `dest_file`; returns the sha256 digest of what was written."""
    import requests

    current = url
    for _ in range(max_redirects + 1):
        if urlsplit(current).scheme not in ("http", "https"):
            raise DownloadError(f"ADD {url}: redirected to {current!r}, which is not http(s)")
        resp = requests.get(current, stream=True, allow_redirects=False, timeout=60)
        if resp.is_redirect:
            current = urljoin(current, resp.headers["Location"])
            resp.close()
            continue
        if resp.status_code != 200:
            raise DownloadError(f"ADD {url}: HTTP {resp.status_code}", hint="check the URL")
        h = hashlib.sha256()
        with resp, open(dest_file, "wb") as f:
            for chunk in resp.iter_content(1 << 20):
                h.update(chunk)
                f.write(chunk)
        digest = "sha256:" + h.hexdigest()
        if checksum and checksum != digest:
            os.unlink(dest_file)
            raise DownloadError(f"ADD {url}: --checksum {checksum} does not match the download ({digest})",
                                hint="update the checksum or the URL")
        return digest
    raise DownloadError(f"ADD {url}: more than {max_redirects} redirects")


def file_name(url: str) -> str:
    return posixpath.basename(urlsplit(url).path) or "index.html"
