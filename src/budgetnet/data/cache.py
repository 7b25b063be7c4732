"""Decoded datasets cached as uint8 .npy files, keyed by a cheap fingerprint of the source files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from budgetnet.data.dataset import CifarData
from budgetnet.fsutil import atomic_path, atomic_write_text

CACHE_VERSION = 1  # bump when decoding changes, so old caches are not reused
ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def default_cache_dir() -> Path:
    """$BUDGETNET_CACHE if set, else ~/.cache/budgetnet."""
    env = os.environ.get("BUDGETNET_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "budgetnet"


def source_key(path: Path) -> str:
    """sha256 of the resolved path and every file's relative name, size and mtime under it."""
    path = path.resolve()
    entries = []
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        st = f.stat()
        entries.append([str(f.relative_to(path)) if f != path else f.name, st.st_size, st.st_mtime_ns])
    blob = json.dumps([CACHE_VERSION, str(path), entries]).encode()
    return hashlib.sha256(blob).hexdigest()


def content_fingerprint(train: tuple, test: tuple, classes: tuple[str, ...]) -> str:
    """sha256 of the decoded pixels, labels and class names: equal for equal data in any format."""
    h = hashlib.sha256(json.dumps(list(classes)).encode())
    for array in (*train, *test):
        h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def cache_folder(cache_dir: Path, key: str) -> Path:
    """Where the decoded arrays of the source with this key live."""
    return cache_dir / "decoded" / key[:24]


def read_cached(folder: Path) -> CifarData | None:
    """The cached dataset in `folder`, or None when it is absent or incomplete (then it is rebuilt)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        arrays = {name: np.load(folder / f"{name}.npy") for name in ARRAYS}
    except (OSError, ValueError, EOFError):
        return None
    if any(list(arrays[name].shape) != meta["shapes"].get(name) for name in ARRAYS):
        return None
    return CifarData(**arrays, classes=tuple(meta["classes"]), source=meta["source"])


def write_cached(folder: Path, data: CifarData) -> None:
    """Write the arrays, then meta.json last, so a half-written cache is never read."""
    (folder / "meta.json").unlink(missing_ok=True)
    for name in ARRAYS:
        with atomic_path(folder / f"{name}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, getattr(data, name))
    meta = {"version": CACHE_VERSION, "classes": list(data.classes), "source": data.source,
            "shapes": {name: list(getattr(data, name).shape) for name in ARRAYS}}
    atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1))
