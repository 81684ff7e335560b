"""Registry errors: each names the registry, the repository and (where there is one) the blob."""
from __future__ import annotations

from grammar.errors import PybuildError


class RegistryError(PybuildError):
    """The registry answered something pybuild cannot use, or could not be reached."""


class AuthError(RegistryError):
    """The registry refused the credentials (or wants some and has none)."""


class NotFound(RegistryError):
    """The repository, tag or blob does not exist in the registry."""


class TransientError(RegistryError):
    """Connection errors, 5xx or 429 that outlasted the retries (or a request that must not repeat)."""
