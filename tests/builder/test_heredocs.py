"""Heredocs as BuildKit runs them: RUN <<EOF as a script (its #! interpreter, else the shell),
`cmd <<EOF` through the shell (redirections, <<- tabs, quoted markers), COPY <<EOF as files with
ARGs expanded unless the marker is quoted; a changed body misses the cache."""
from __future__ import annotations


import pytest

from builder.build import BuildError

pytestmark = [pytest.mark.root, pytest.mark.namespaces, pytest.mark.cgroups, pytest.mark.debootstrap]




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




def test_heredocs_run_and_copy(make_build, image_file, base_dir):
    store, result, _ = make_build(DOCKERFILE, store_dir=base_dir)
    image = result.image
    assert image_file(store, image, "/greeting") == "hello world\n"
    assert image_file(store, image, "/literal") == "no $EXPANSION here\n"
    assert image_file(store, image, "/from-perl") == "perl ran\n"
    assert image_file(store, image, "/etc/app.conf") == "who=world\n"
    assert image_file(store, image, "/etc/multi/RAW") == "kept $WHO\n"
    assert image_file(store, image, "/etc/multi/B") == "second world\n"


def test_a_changed_body_misses_from_that_step(make_build, image_file, base_dir, tmp_path):
    make_build(DOCKERFILE, store_dir=base_dir)
    _, again, _ = make_build(DOCKERFILE, store_dir=base_dir, ctx_dir=tmp_path / "ctx2")
    assert again.cached == again.steps
    changed = DOCKERFILE.replace('echo "hello $WHO"', 'echo "bye $WHO"')
    store, third, _ = make_build(changed, store_dir=base_dir, ctx_dir=tmp_path / "ctx3")
    assert third.cached == 0 and image_file(store, third.image, "/greeting") == "bye world\n"


def test_heredocs_mixed_with_files_are_a_clear_error(make_build, image_file, base_dir):
    with pytest.raises(BuildError, match="mixes heredocs"):
        make_build("FROM debian:bookworm\nCOPY a.txt <<EOF /x/\nhi\nEOF\n", {"a.txt": "a"}, store_dir=base_dir)
