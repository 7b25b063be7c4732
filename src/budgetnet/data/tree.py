"""One read-only view over a dataset held in a directory, a .zip or a .tar(.gz) archive.

Only the files a CIFAR-10 layout can use are read (the batches, their class names, PNG/JPEG
images), each after checking the size it declares against what such a file can be, and the
total read from one archive is bounded: a small archive holding a huge member costs one line.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from budgetnet.data.images import IMAGE_SUFFIXES, MAX_IMAGE_BYTES, read_regular_file
from budgetnet.errors import DataError

TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
BATCH_NAMES = {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch"}
META_NAMES = {"batches.meta", "batches.meta.txt"}
MAX_BATCH_BYTES = 32 << 20  # a 10,000-image batch: 30,730,000 bytes as records, about 31.0 MB pickled
MAX_META_BYTES = 1 << 20  # ten class names
MAX_TOTAL_BYTES = 2 << 30  # read from one archive in all (CIFAR-10 itself is about 180 MB)


def member_limit(name: str) -> int | None:
    """The most bytes the file `name` can hold in a CIFAR-10 layout; None for a file no layout uses."""
    base = posixpath.basename(name)
    if base.removesuffix(".bin") in BATCH_NAMES:
        return MAX_BATCH_BYTES
    if base in META_NAMES:
        return MAX_META_BYTES
    if base.lower().endswith(IMAGE_SUFFIXES):
        return MAX_IMAGE_BYTES
    return None


@dataclass(frozen=True)
class FileTree:
    """Files by relative POSIX name, from a directory (read lazily) or an archive (read once into memory)."""

    root: Path
    kind: str  # "dir", "zip" or "tar"
    members: dict[str, bytes] = field(default_factory=dict, repr=False)  # archives only

    def where(self, name: str) -> str:
        """How an error names the file: a path, or archive:member."""
        return str(self.root / name) if self.kind == "dir" else f"{self.root}:{name}"

    def exists(self, name: str) -> bool:
        """Whether a regular file `name` is present."""
        return (self.root / name).is_file() if self.kind == "dir" else name in self.members

    def read(self, name: str) -> bytes:
        """The bytes of file `name`, or a DataError naming it."""
        if self.kind != "dir":
            if name not in self.members:
                raise DataError(f"{self.where(name)}: missing")
            return self.members[name]
        return read_regular_file(self.root / name, member_limit(name) or MAX_META_BYTES, "file of CIFAR-10")

    def list(self, folder: str) -> tuple[list[str], list[str]]:
        """Sorted (subfolders, files) directly inside `folder` ("" for the top), as names relative to the tree."""
        prefix = f"{folder}/" if folder else ""
        if self.kind == "dir":
            entries = sorted((self.root / folder).iterdir()) if (self.root / folder).is_dir() else []
            return ([prefix + p.name for p in entries if p.is_dir()], [prefix + p.name for p in entries if p.is_file()])
        dirs, files = set(), []
        for name in self.members:
            if name.startswith(prefix):
                head, sep, _ = name[len(prefix):].partition("/")
                (dirs.add(prefix + head) if sep else files.append(name))
        return sorted(dirs), sorted(files)


def check_source(path: Path) -> None:
    """Refuse, without opening it for reading, a dataset path that is neither a directory nor a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file or directory") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise DataError(f"{path}: not a directory or a regular file (a FIFO or device?); refused unread")


def open_tree(path: Path) -> FileTree:
    """The FileTree for a directory, a .zip or a .tar/.tar.gz/.tgz file."""
    check_source(path)
    if path.is_dir():
        return FileTree(path, "dir")
    name = path.name.lower()
    if name.endswith(".zip"):
        return FileTree(path, "zip", _read_zip(path))
    if name.endswith(TAR_SUFFIXES):
        return FileTree(path, "tar", _read_tar(path))
    raise DataError(f"{path}: not a directory, .zip or .tar.gz (see `budgetnet data info --help` for the formats)")


def _clean(name: str) -> str:
    return name[2:] if name.startswith("./") else name


class _Budget:
    """Checks each member's declared size against its kind's limit, and the running total."""

    def __init__(self, archive: Path) -> None:
        self.archive, self.total = archive, 0

    def allow(self, name: str, declared: int) -> int | None:
        """The byte limit to read `name` with, or None to skip it; a DataError if it cannot be what it claims."""
        limit = member_limit(name)
        if limit is None:
            return None
        if declared > limit:
            raise DataError(f"{self.archive}:{name}: declares {declared:,} bytes, more than such a file can be "
                            f"({limit:,}); refused unread")
        self.total += declared
        if self.total > MAX_TOTAL_BYTES:
            raise DataError(f"{self.archive}: its CIFAR-10 files hold more than {MAX_TOTAL_BYTES:,} bytes in all; "
                            f"refused")
        return limit

    def check(self, name: str, data: bytes, limit: int) -> bytes:
        """`data` as read (at most limit + 1 bytes), refused if the member held more than it declared."""
        if len(data) > limit:
            raise DataError(f"{self.archive}:{name}: holds more than {limit:,} bytes; refused")
        return data


def _read_zip(path: Path) -> dict[str, bytes]:
    budget, members = _Budget(path), {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                limit = None if info.is_dir() else budget.allow(_clean(info.filename), info.file_size)
                if limit is not None:
                    with archive.open(info) as f:
                        members[_clean(info.filename)] = budget.check(info.filename, f.read(limit + 1), limit)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise DataError(f"{path}: truncated or corrupt zip archive ({e})") from None
    return members


def _read_tar(path: Path) -> dict[str, bytes]:
    # one pass: a gzip stream cannot seek, so members are met in order and the unused ones skipped
    budget, members = _Budget(path), {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                limit = budget.allow(_clean(member.name), member.size) if member.isfile() else None
                if limit is not None:
                    data = archive.extractfile(member).read(limit + 1)  # type: ignore[union-attr]
                    members[_clean(member.name)] = budget.check(member.name, data, limit)
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise DataError(f"{path}: truncated or corrupt tar archive ({e})") from None
    return members
