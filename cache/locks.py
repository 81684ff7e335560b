"""fcntl locks shared by every pybuild process on one store: the kernel drops them on kill -9."""
from __future__ import annotations

import fcntl
import os
import re
from contextlib import contextmanager
from typing import Iterator

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


@contextmanager
def file_lock(directory: str, name: str, *, shared: bool = False) -> Iterator[None]:
    if not _NAME.match(name):
        raise ValueError(f"bad lock name {name!r}")
    fd = os.open(os.path.join(directory, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
