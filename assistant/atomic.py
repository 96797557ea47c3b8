"""Write a file or a folder so that readers see the old version or the new one, never half of either.

    from assistant.atomic import atomic_write, atomic_dir
    atomic_write(path, json.dumps(data))                 # str or bytes; temp file + fsync + os.replace
    with atomic_dir(folder) as tmp:                      # fill tmp; on success it replaces folder
        model.save_pretrained(tmp)
    with exclusive_lock(folder / ".lock"):               # one writer at a time across processes
        ...

Both put the temporary beside the target (same file system, so the final rename is atomic) and remove
it when the writer fails or is interrupted, so a crash leaves the previous version in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# read once at import: os.umask can only be read by setting it, which is not thread-safe later on
_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder, fsynced, then renamed over it. The
    file gets the permissions a plain write would give it (mkstemp's own are owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished folder `tmp` to `target`; an existing `target` is moved aside first and removed
    after (a folder cannot be renamed over a non-empty one)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """A fresh temp folder beside `target`; when the block succeeds it replaces `target` (see replace_dir),
    when it raises (or is interrupted) the temp folder is removed and `target` is untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def exclusive_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if missing) for the block, across processes.
    With wait=False a lock held elsewhere raises BlockingIOError at once. Released on exit, also when the
    process dies (the kernel drops it with the file descriptor)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)


__all__ = ["atomic_dir", "atomic_write", "exclusive_lock", "replace_dir"]
