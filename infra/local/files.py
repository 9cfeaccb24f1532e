"""State files of the local runtime: atomic replacement and `flock` locks, one implementation for all of them.

Readers of a state file (Prometheus's file_sd, nginx, `mlp release status`) must never see half of one, and two
writers (the CLI, the release executor, the webhook's releases) must not interleave a read-modify-write. `flock`
locks are dropped by the kernel when their owner dies, even on SIGKILL, so a dead process never blocks the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` with `text`: a reader sees the old or the new content, never a mix, even after a crash.
    State files are 0644 (the servers read them); pass 0o600 for a file that holds a secret: the temporary file is
    0600 from its first byte (mkstemp), so the secret is never readable by others, not even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if absent) for the block, waiting for any other holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def try_lock(path: Path) -> IO[str] | None:
    """Take an exclusive lock on `path` without waiting: the open handle, held until it is closed, or None when
    another process holds the lock. The handle is opened for appending, so the holder may write into the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
