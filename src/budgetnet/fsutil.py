"""Atomic file writes: a reader never sees a half-written file, and a failed write loses nothing.

A temporary file is named `.NAME.PID.XXXXXXXX.tmp` beside its target, so that the temporary
files of a process that was killed (kill -9, power cut) can be told apart and swept later.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp$")
LEGACY_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # written before the pid was part of the name
LEGACY_TEMP_AGE_S = 3600  # a legacy temporary file untouched this long belongs to no live writer


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    An OSError raised while writing names `path` (a failed write() names no file, and the
    temporary name means nothing to the user), so the CLI's one line can say where it happened.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a written file should get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)  # the rename itself survives a power cut
    except OSError as e:
        if e.filename is None or str(e.filename) == tmp:
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode())


def reserve_space(path: str | Path, size: int) -> None:
    """Allocate `size` bytes for the file `path` now, so that a memory-mapped write into it cannot hit a
    full disk later (that is SIGBUS, a crash with no message); a full disk raises ENOSPC here instead."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise OSError(e.errno, e.strerror, str(path)) from None
        # a file system without fallocate: the free space is the best check there is
        import shutil

        if shutil.disk_usage(Path(path).parent).free < size:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
    finally:
        os.close(fd)


def _writer_is_gone(entry: os.DirEntry) -> bool:
    match = TEMP_NAME.match(entry.name)
    if match is None:
        legacy = LEGACY_TEMP_NAME.match(entry.name) is not None
        return legacy and time.time() - entry.stat().st_mtime > LEGACY_TEMP_AGE_S
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, and someone else's
    return False


def sweep_cache_folders(root: str | Path) -> int:
    """sweep_stale_temps in every folder directly below `root` (a cache's decoded/ or stores/)."""
    try:
        folders = [entry.path for entry in os.scandir(root) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    return sum(sweep_stale_temps(folder) for folder in folders)


def sweep_stale_temps(folder: str | Path) -> int:
    """Delete the temporary files in `folder` whose writer no longer runs; returns how many bytes were freed."""
    freed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0  # absent or unreadable: nothing of ours to sweep
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and _writer_is_gone(entry):
                size = entry.stat().st_size
                os.unlink(entry.path)
                freed += size
        except OSError:
            continue  # raced with another sweeper or not ours to delete
    return freed
