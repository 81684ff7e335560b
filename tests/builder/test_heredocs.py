"""Heredocs as BuildKit runs them: RUN <<EOF as a script (its #! interpreter, else the shell),
`cmd <<EOF` through the shell (redirections, <<- tabs, quoted markers), COPY <<EOF as files with
ARGs expanded unless the marker is quoted; a changed body misses the cache."""
from __future__ import annotations

import os

import pytest

from builder.build import BuildError

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, base_tarball):
    from cache.archive import import_rootfs
    from cache.store import Store

    root = tmp_path_factory.mktemp("heredoc") / "store"
    with open(base_tarball, "rb") as f:
        import_rootfs(Store.open(str(root)), f, ref="debian:bookworm")
    return root


DOCKERFILE = '''FROM debian:bookworm
ARG WHO=world
RUN <<EOF
echo "hello $WHO" > /greeting
EOF
RUN cat <<-"EOT" > /literal
\tno $EXPANSION here
\tEOT
RUN <<EOF
#!/usr/bin/perl
open(F, ">/from-perl"); print F "perl ran\\n";
EOF
COPY <<EOF /etc/app.conf
who=${WHO}
EOF
COPY <<'RAW' <<B /etc/multi/
kept $WHO
RAW
second $WHO
B
'''


def _read(store, image, path: str) -> str:
    for diff_id in reversed(image.diff_ids):
        full = os.path.join(store.unpacked_layer(diff_id), path.lstrip("/"))
        if os.path.exists(full):
            with open(full) as f:
                return f.read()
    raise AssertionError(f"{path} is in no layer")


def test_heredocs_run_and_copy(make_build, base_dir):
    store, result, _ = make_build(DOCKERFILE, store_dir=base_dir)
    image = result.image
    assert _read(store, image, "/greeting") == "hello world\n"
    assert _read(store, image, "/literal") == "no $EXPANSION here\n"
    assert _read(store, image, "/from-perl") == "perl ran\n"
    assert _read(store, image, "/etc/app.conf") == "who=world\n"
    assert _read(store, image, "/etc/multi/RAW") == "kept $WHO\n"
    assert _read(store, image, "/etc/multi/B") == "second world\n"


def test_a_changed_body_misses_from_that_step(make_build, base_dir, tmp_path):
    make_build(DOCKERFILE, store_dir=base_dir)
    _, again, _ = make_build(DOCKERFILE, store_dir=base_dir, ctx_dir=tmp_path / "ctx2")
    assert again.cached == again.steps
    changed = DOCKERFILE.replace('echo "hello $WHO"', 'echo "bye $WHO"')
    store, third, _ = make_build(changed, store_dir=base_dir, ctx_dir=tmp_path / "ctx3")
    assert third.cached == 0 and _read(store, third.image, "/greeting") == "bye world\n"


def test_heredocs_mixed_with_files_are_a_clear_error(make_build, base_dir):
    with pytest.raises(BuildError, match="mixes heredocs"):
        make_build("FROM debian:bookworm\nCOPY a.txt <<EOF /x/\nhi\nEOF\n", {"a.txt": "a"}, store_dir=base_dir)
