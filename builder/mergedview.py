"""A layer made by changing files in the merged view of its parent, as BuildKit's file operations
(COPY, ADD, WORKDIR) do: the parent's layers are the overlay's lowerdirs, a fresh upperdir takes
every change, and that upperdir is the new layer's diff.

Working in the merged view, rather than in an empty directory, is what makes the rules come out as
BuildKit's: an existing destination directory is seen (a file goes inside it), its symlinks are
followed inside the image's root, the parents of what is written are copied up with their owner and
mode (/tmp stays 1777, a user's 0700 home stays the user's), and a path deleted by an earlier layer
is recreated as overlayfs records it (opaque directory).

The overlay is mounted in a forked child that first enters a private mount namespace, so the mounts
vanish with the child whatever happens (even kill -9) and the build's own mount table never changes.
The child leaves with os._exit; an error it meets comes back to the parent as its message.
"""
from __future__ import annotations

import os
from typing import Callable

from grammar.errors import PybuildError


class ChangeError(PybuildError):
    """What a file operation refuses (a clash with the image, a missing source): the message says
    which path and why; the instruction module adds the Dockerfile line."""


def layer_from_changes(build, state, change: Callable[[str, list[str]], None], *,
                       parent: bool = True, views: tuple[tuple[str, ...], ...] = ()):
    """Run `change(root, view_roots)` in the merged view of `state`'s image (or of nothing, for
    `parent=False`: COPY --link) and pack what it changed into a layer. `views` are further
    read-only stacks of diff_ids (a COPY --from stage), mounted for `change` to read from."""
    store = build.store
    with store.work_dir("change") as scratch:
        upper, work, merged, empty = (os.path.join(scratch, n) for n in ("upper", "work", "merged", "empty"))
        for d in (upper, work, merged, empty):
            os.mkdir(d, 0o755)
        lowers = store.layer_dirs(list(state.image.diff_ids)) if parent else []
        stacks = []
        for i, diff_ids in enumerate(views):
            target = os.path.join(scratch, f"view{i}")
            os.mkdir(target, 0o755)
            stacks.append((store.layer_dirs(list(diff_ids)) or [empty], target))
        _in_child(lambda: _change_in_view(lowers or [empty], upper, work, merged, stacks, change))
        return layer_of_upper(build, upper)


def read_in_view(store, diff_ids, read: Callable[[str], bytes]) -> bytes:
    """`read(root)` in a read-only merged view of the layers `diff_ids` (the kernel's own overlay
    rules: whiteouts, opaque directories, symlinks across layers), in a forked child whose mount
    namespace is private; its bytes come back. A PybuildError it raises comes back as ChangeError."""
    with store.work_dir("view") as scratch:
        target = os.path.join(scratch, "view")
        os.mkdir(target, 0o755)
        lowers = store.layer_dirs(list(diff_ids)) if diff_ids else []

        def work() -> bytes:
            from runtime.mounts import mount_readonly_view, private_mount_namespace

            if not lowers:  # no layer (FROM scratch): an empty root
                return read(target)
            private_mount_namespace()
            return read(mount_readonly_view(lowers, target))
        return _in_child(work)


def layer_of_upper(build, upper: str):
    """The one layer tail of every filesystem step (RUN, COPY, ADD, WORKDIR): the overlay upperdir
    packed into a deterministic layer blob, then kept as that layer's unpacked directory (moved,
    not extracted again)."""
    from cache.layers import pack_diff

    layer = pack_diff(upper, build.store, source_date_epoch=build.opts.source_date_epoch)
    build.store.adopt_unpacked_layer(layer.diff_id, upper)
    return layer


def _change_in_view(lowers, upper, work, merged, stacks, change) -> None:
    from runtime.mounts import mount_overlay, mount_readonly_view, private_mount_namespace

    os.umask(0)   # modes are set as BuildKit sets them, not filtered by the caller's umask
    private_mount_namespace()
    # volatile: the upper is packed and kept by rename, never mounted again; syncing it is waste
    mount_overlay(lowers, upper, work, merged, volatile=True)
    roots = [mount_readonly_view(dirs, target) for dirs, target in stacks]
    change(merged, roots)


def _in_child(work: Callable[[], bytes | None]) -> bytes:
    """Run `work` in a forked child; its PybuildError (or any error) is raised here as ChangeError,
    and the bytes it returns (if any) are returned here."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 1
        try:
            out = memoryview(work() or b"")
            while out:
                out = out[os.write(w, out):]
            code = 0
        except PybuildError as err:
            os.write(w, str(err).encode("utf-8", "replace"))
        except BaseException as err:  # noqa: BLE001 - the child never goes on after a failure
            os.write(w, f"{type(err).__name__}: {err}".encode("utf-8", "replace"))
        finally:  # whatever happened (even a broken pipe to a parent that is gone), the child ends here
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise ChangeError(data.decode("utf-8", "replace") or f"the file operation ended with status {code}")
    return data
