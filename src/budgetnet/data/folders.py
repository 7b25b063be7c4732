"""Image-folder datasets: ROOT/{train,test}/<class>/*.{png,jpg,jpeg}, in a directory or an archive."""

from __future__ import annotations

import re

import numpy as np

from budgetnet.data.dataset import check_split
from budgetnet.data.images import IMAGE_SUFFIXES, decode_image
from budgetnet.data.tree import FileTree
from budgetnet.errors import DataError

SPLITS = ("train", "test")


def _natural(name: str) -> list:
    # "img10" after "img9", as people number files without zero padding
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _class_files(tree: FileTree, folder: str) -> dict[str, list[str]]:
    subdirs, _ = tree.list(folder)
    classes: dict[str, list[str]] = {}
    for sub in subdirs:
        _, files = tree.list(sub)
        images = sorted((f for f in files if f.lower().endswith(IMAGE_SUFFIXES)), key=_natural)
        if images:
            classes[sub.rsplit("/", 1)[-1]] = images
    return classes


def load_folders(tree: FileTree, prefix: str) -> tuple[tuple, tuple, tuple[str, ...], dict]:
    """Both splits from class folders; classes are the train split's folder names, sorted."""
    found = {split: _class_files(tree, prefix + split) for split in SPLITS}
    for split in SPLITS:
        if not found[split]:
            raise DataError(f"{tree.where(prefix + split)}: missing split: expected {split}/<class>/ folders "
                            f"holding {'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES)} images")
    classes = tuple(sorted(found["train"]))
    unknown = sorted(set(found["test"]) - set(classes))
    if unknown:
        raise DataError(f"{tree.where(prefix + 'test/' + unknown[0])}: class '{unknown[0]}' has no training images")
    splits = []
    for split in SPLITS:
        names = [(label, f) for label, c in enumerate(classes) for f in found[split].get(c, [])]
        images = np.stack([decode_image(tree.read(f), tree.where(f)) for _, f in names])
        labels = np.array([label for label, _ in names], dtype=np.int64)
        check_split(images, labels, len(classes), tree.where(prefix + split))
        splits.append((images, labels))
    lossy = any(f.lower().endswith((".jpg", ".jpeg")) for split in found.values() for files in split.values()
                for f in files)
    return splits[0], splits[1], classes, {"checksums": "unknown", "lossy": lossy}
