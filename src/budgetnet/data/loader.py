"""load_cifar: detect a source's layout, decode it once, and serve it from the cache afterwards."""

from __future__ import annotations

from pathlib import Path

from budgetnet.data.archives import load_binary, load_python
from budgetnet.data.cache import cache_folder, content_fingerprint, default_cache_dir, read_cached, source_key, write_cached
from budgetnet.data.dataset import CifarData
from budgetnet.data.download import ARCHIVE_MD5, download_cifar, file_md5
from budgetnet.data.folders import load_folders
from budgetnet.data.tree import FileTree, check_source, open_tree
from budgetnet.errors import DataError
from budgetnet.fsutil import sweep_cache_folders

# where each layout's marker file sits relative to the path a user gives
_LAYOUTS = (
    ("binary", "data_batch_1.bin", ("", "cifar-10-batches-bin/")),
    ("python", "data_batch_1", ("", "cifar-10-batches-py/")),
)
_LOADERS = {"binary": load_binary, "python": load_python, "folder": load_folders}
FORMATS_HELP = ("the binary or python version (archive or extracted folder), or train/<class>/ and test/<class>/ "
                "image folders (a directory, .zip or .tar.gz)")


def _prefixes(tree: FileTree) -> list[str]:
    # an archive may wrap everything in one top folder; try the top level and that folder
    dirs, files = tree.list("")
    return [""] + ([dirs[0] + "/"] if len(dirs) == 1 and not files else [])


def detect(tree: FileTree) -> tuple[str, str]:
    """The layout ("binary", "python" or "folder") and the prefix its files sit under."""
    for top in _prefixes(tree):
        for layout, marker, subdirs in _LAYOUTS:
            for sub in subdirs:
                if tree.exists(top + sub + marker) or tree.exists(top + sub + marker.replace("data_batch_1", "test_batch")):
                    return layout, top + sub
        if tree.list(top + "train")[0] or tree.list(top + "test")[0]:
            return "folder", top
    raise DataError(f"{tree.root}: no CIFAR-10 layout found; expected {FORMATS_HELP}")


def decode(path: Path) -> CifarData:
    """Read and check a source without the cache."""
    tree = open_tree(path)
    layout, prefix = detect(tree)
    train, test, classes, report = _LOADERS[layout](tree, prefix)
    fmt = "zip" if layout == "folder" and tree.kind == "zip" else layout
    if layout == "python" and tree.kind == "tar" and file_md5(path) == ARCHIVE_MD5:
        report = {**report, "checksums": "match"}  # the official archive itself: its published MD5 holds
    source = {"format": fmt, "path": str(path.resolve()), "fingerprint": content_fingerprint(train, test, classes),
              "checksums": report["checksums"], "lossy": report.get("lossy", False), "container": tree.kind}
    if "checksum_mismatches" in report:
        source["checksum_mismatches"] = report["checksum_mismatches"]
    return CifarData(train[0], train[1], test[0], test[1], classes, source)


def load_cifar(path: str | Path | None, cache_dir: Path | None = None, download: bool = False) -> CifarData:
    """CIFAR-10 (or any dataset in one of its layouts) from `path`, decoded once then cached as .npy.

    With download=True and no existing `path`, the official python version is fetched into the
    cache directory (MD5-checked) and loaded from there.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if path is None or not Path(path).exists():
        if not download:
            raise DataError(f"{path}: no such file or directory (pass --download to fetch the official archive)")
        path = download_cifar(cache_dir)
    path = Path(path)
    check_source(path)  # a FIFO or device is refused here, before anything opens it
    folder = cache_folder(cache_dir, source_key(path))
    sweep_cache_folders(folder.parent)
    cached = read_cached(folder)
    if cached is not None:
        return cached
    data = decode(path)
    try:
        write_cached(folder, data)
    except OSError:
        pass  # a read-only or full cache only costs speed next time
    return data
