"""RUN output reaches the progress stream as it is printed, not when the step ends."""
from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]


def test_run_lines_arrive_while_the_command_runs(tmp_path, base_tarball):
    from builder.build import BuildOptions, build
    from cache.archive import import_rootfs
    from cache.store import Store

    store = Store.open(str(tmp_path / "store"))
    with open(base_tarball, "rb") as f:
        import_rootfs(store, f, ref="debian:bookworm")
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm\nRUN echo first; sleep 2; echo second\n")
    seen: dict[str, float] = {}

    def progress(event: dict) -> None:
        if event.get("kind") == "log":
            seen[event["text"]] = time.monotonic()
    build(store, BuildOptions(context_dir=str(tmp_path)), progress)
    # Buffered until the end, both lines would arrive together; live, the sleep lies between them.
    # (An ordering check, not a speed one: a slower machine only widens the gap.)
    assert seen["second"] - seen["first"] >= 1.0
