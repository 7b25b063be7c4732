"""One read-only view over a dataset held in a directory, a .zip or a .tar(.gz) archive."""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from budgetnet.errors import DataError

TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")


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
        try:
            return (self.root / name).read_bytes()
        except OSError as e:
            raise DataError(f"{self.where(name)}: cannot read ({e.strerror})") from None

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


def open_tree(path: Path) -> FileTree:
    """The FileTree for a directory, a .zip or a .tar/.tar.gz/.tgz file."""
    if path.is_dir():
        return FileTree(path, "dir")
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    name = path.name.lower()
    if name.endswith(".zip"):
        return FileTree(path, "zip", _read_zip(path))
    if name.endswith(TAR_SUFFIXES):
        return FileTree(path, "tar", _read_tar(path))
    raise DataError(f"{path}: not a directory, .zip or .tar.gz (see `budgetnet data info --help` for the formats)")


def _clean(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _read_zip(path: Path) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as archive:
            return {_clean(i.filename): archive.read(i) for i in archive.infolist() if not i.is_dir()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DataError(f"{path}: truncated or corrupt zip archive ({e})") from None


def _read_tar(path: Path) -> dict[str, bytes]:
    # one pass: a gzip stream cannot seek, so every member is read in order
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile():
                    members[_clean(member.name)] = archive.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise DataError(f"{path}: truncated or corrupt tar archive ({e})") from None
    return members
