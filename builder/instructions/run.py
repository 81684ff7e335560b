"""RUN: needs runtime.sandbox and runtime.mounts (the runtime wing); until they land the build
stops at the first RUN with a clear error instead of running anything outside a sandbox."""
from __future__ import annotations


def apply(build, state, ins):
    from ..build import BuildError

    raise BuildError(f"{build.where(ins)}: RUN needs runtime.sandbox and runtime.mounts, which this checkout lacks",
                     hint="build Dockerfiles without RUN until the runtime wing lands")
