"""RUN --mount (cache, bind, tmpfs) and COPY --parents/--link: BuildKit's semantics."""
from __future__ import annotations


import pytest

from builder.runmounts import MountError, parse



@pytest.mark.parametrize("spec, kind, target, extra", [
    ("type=cache,target=/root/.cache", "cache", "/root/.cache", {"id": "/root/.cache"}),
    ("type=cache,id=pip,target=/c,mode=0700,uid=1000", "cache", "/c", {"id": "pip", "mode": 0o700, "uid": 1000}),
    ("target=/src", "bind", "/src", {"source": ".", "rw": False}),
    ("type=bind,src=sub,dst=/s,rw", "bind", "/s", {"source": "sub", "rw": True}),
    ("type=tmpfs,target=/t,size=1m", "tmpfs", "/t", {"size": "1m"}),
])
def test_parse(spec, kind, target, extra):
    m = parse(spec, "Dockerfile:2:1")
    assert (m.kind, m.target) == (kind, target)
    assert all(getattr(m, k) == v for k, v in extra.items())


@pytest.mark.parametrize("spec, words", [
    ("type=secret,id=x", "not supported"), ("type=ssh", "not supported"),
    ("type=nfs,target=/x", "unknown"), ("type=cache", "target is required"), ("type=cache,target=/x,mode=9z", "octal"),
])
def test_parse_errors_name_the_line(spec, words):
    with pytest.raises(MountError, match=words) as err:
        parse(spec, "Dockerfile:2:1")
    assert "Dockerfile:2:1" in str(err.value)




DOCKERFILE = """FROM debian:bookworm
RUN --mount=type=cache,target=/var/cache/demo sh -c 'echo run >> /var/cache/demo/count; wc -l < /var/cache/demo/count > /count'
RUN --mount=type=bind,source=sub,target=/src cat /src/data > /copied
RUN --mount=type=bind,target=/ctx,rw sh -c 'echo scribble > /ctx/new; ls /ctx > /listing'
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/y'
COPY --parents sub/data /kept/
"""




@pytest.mark.root
@pytest.mark.namespaces
@pytest.mark.cgroups
@pytest.mark.debootstrap
def test_mounts_in_a_build(make_build, image_file, base_dir, tmp_path):
    files = {"sub/data": "v1\n", "secret.txt": "hidden\n", ".dockerignore": "secret.txt\n"}
    store, first, _ = make_build(DOCKERFILE, files, store_dir=base_dir)
    image = first.image
    assert image_file(store, image, "/count").strip() == "1"
    assert image_file(store, image, "/copied") == "v1\n"
    listing = image_file(store, image, "/listing").split()
    assert "sub" in listing and "secret.txt" not in listing     # .dockerignore holds for binds
    assert not (tmp_path / "ctx" / "new").exists()               # rw writes never reach the context
    assert image_file(store, image, "/scratch/y") is None              # tmpfs content is not in the layer
    assert image_file(store, image, "/kept/sub/data") == "v1\n"        # --parents keeps the path
    store, again, _ = make_build(DOCKERFILE, files, store_dir=base_dir, no_cache=True)
    assert image_file(store, again.image, "/count").strip() == "2"    # the cache mount persisted
    (tmp_path / "ctx" / "sub" / "data").write_text("v2\n")
    store, third, _ = make_build(DOCKERFILE, store_dir=base_dir)
    assert third.cached == 1 and image_file(store, third.image, "/copied") == "v2\n"  # bound content is keyed
