"""Fetching the official python-version archive, checking its MD5 and extracting it safely."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from budgetnet.errors import DataError
from budgetnet.fsutil import atomic_path

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # published on the CIFAR-10 home page
EXTRACTED = "cifar-10-batches-py"
CHUNK = 1 << 20  # bytes per read while downloading and hashing


def file_md5(path: Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, dest: Path, opener: Callable[[str], BinaryIO] = urllib.request.urlopen) -> None:
    """Stream `url` into `dest` atomically, with a progress bar."""
    from tqdm import tqdm

    try:
        with opener(url) as response, atomic_path(dest) as tmp, open(tmp, "wb") as out:
            total = int(getattr(response, "headers", {}).get("Content-Length", 0) or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}") as bar:
                while block := response.read(CHUNK):
                    out.write(block)
                    bar.update(len(block))
    except OSError as e:  # URLError and HTTPError are OSErrors
        raise DataError(f"{url}: download failed ({e})") from None


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refusing unsafe member {member.name!r} (absolute, '..', link or device)")


def verify_and_extract(archive: Path, out_dir: Path, md5: str = ARCHIVE_MD5) -> Path:
    """Check the archive's MD5, extract it safely into out_dir, and return out_dir/cifar-10-batches-py."""
    actual = file_md5(archive)
    if actual != md5:
        raise DataError(f"{archive}: MD5 {actual} does not match the published {md5}; delete it and retry")
    out_dir.mkdir(parents=True, exist_ok=True)
    # extract beside the target and rename, so an interrupted extraction never looks complete
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".extract-") as tmp:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                for member in members:
                    _check_member(member, archive)
                # our own checks above; the stdlib's "data" filter too where this Python has it
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **safe)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{archive}: truncated or corrupt archive ({e})") from None
        extracted = Path(tmp) / EXTRACTED
        if not extracted.is_dir():
            raise DataError(f"{archive}: holds no {EXTRACTED}/ folder")
        target = out_dir / EXTRACTED
        shutil.rmtree(target, ignore_errors=True)
        extracted.rename(target)
    return target


def download_cifar(cache_dir: Path, opener: Callable[[str], BinaryIO] = urllib.request.urlopen) -> Path:
    """The extracted official python version under cache_dir/downloads, fetched and checked if not there yet."""
    folder = cache_dir / "downloads"
    target = folder / EXTRACTED
    if (target / "test_batch").is_file():
        return target
    archive = folder / ARCHIVE
    if not archive.is_file():
        fetch(URL, archive, opener)
    return verify_and_extract(archive, folder, ARCHIVE_MD5)
