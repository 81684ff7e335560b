"""The registry client: pull, push, login/logout, FROM's image policy, and the build cache shared
through a registry. Importing this package loads nothing heavy (requests is imported on first use).

    pull(store, ref, platform=None, progress=None, *, tls_verify=None) -> Image
    push(store, image_or_ref, dest_ref, progress=None, *, tls_verify=None) -> manifest digest
    ensure_image(store, ref, policy="missing"|"always"|"never", platform=None, progress=None) -> Image
    login(registry, username, password) -> where the credentials went ; logout(registry) -> bool
    export_cache(store, ref) / import_cache(store, ref)   (--cache-to / --cache-from; see cachesync)
"""
from __future__ import annotations

from .errors import AuthError, NotFound, RegistryError, TransientError

POLICIES = ("always", "missing", "never")


def pull(store, ref, platform=None, progress=None, *, tls_verify=None):
    from .puller import pull as _pull

    return _pull(store, ref, platform, progress, tls_verify=tls_verify)


def push(store, image_or_ref, dest_ref, progress=None, *, tls_verify=None):
    from .pusher import push as _push

    return _push(store, image_or_ref, dest_ref, progress, tls_verify=tls_verify)


def ensure_image(store, ref, policy="missing", platform=None, progress=None, *, tls_verify=None):
    """The image FROM names, by `--pull` policy: always (pull, as `docker build --pull`), missing
    (pull only when the store lacks it), never (the store's or an error)."""
    from ..errors import ImageNotFound

    if policy not in POLICIES:
        from grammar.errors import UsageError

        raise UsageError(f"--pull={policy}: expected one of {', '.join(POLICIES)}")
    if policy != "always":
        from ..platforms import matches

        try:
            image = store.resolve(ref, platform)
        except ImageNotFound:
            image = None
        if image is not None and (not platform or matches(image.config, platform)):
            return image
        if policy == "never":  # absent, or there for another platform only
            raise ImageNotFound(f"{ref} ({platform})" if image is not None else ref) from None
    return pull(store, ref, platform, progress, tls_verify=tls_verify)


def login(registry, username, password, *, tls_verify=None):
    """Check the credentials against the registry (GET /v2/ with them), then save them."""
    from . import config as cfg
    from .transport import Client

    creds = cfg.Credentials(username, password)
    Client(registry, tls_verify=tls_verify, credentials=creds).ping()
    return cfg.store_credentials(registry, creds)


def logout(registry):
    from . import config as cfg

    return cfg.erase_credentials(registry)


def export_cache(store, ref, progress=None, *, tls_verify=None, keys=None):
    from .cachesync import export_cache as _export

    return _export(store, ref, progress, tls_verify=tls_verify, keys=keys)


def import_cache(store, ref, progress=None, *, tls_verify=None):
    from .cachesync import import_cache as _import

    return _import(store, ref, progress, tls_verify=tls_verify)


__all__ = ["pull", "push", "ensure_image", "login", "logout", "export_cache", "import_cache",
           "RegistryError", "AuthError", "NotFound", "TransientError", "POLICIES"]
