"""The two official CIFAR-10 layouts: the binary version (.bin records) and the python version (pickles)."""

from __future__ import annotations

import hashlib

import numpy as np

from budgetnet.data.dataset import CIFAR10_CLASSES, check_labels, check_split
from budgetnet.data.safe_pickle import safe_loads
from budgetnet.data.tree import FileTree
from budgetnet.errors import DataError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
RECORD = 1 + 3 * 32 * 32  # binary version: one label byte, then the R, G and B planes
BINARY_MD5 = {  # published MD5s of the official binary files
    "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
}
Split = tuple[np.ndarray, np.ndarray]


def _require(tree: FileTree, prefix: str, names: tuple[str, ...], split: str) -> None:
    missing = [n for n in names if not tree.exists(prefix + n)]
    if missing:
        raise DataError(f"{tree.where(prefix + missing[0])}: missing, so the {split} split is incomplete "
                        f"(expected {', '.join(names)})")


def _concat(parts: list[Split], num_classes: int, where: str) -> Split:
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    check_split(images, labels, num_classes, where)
    return images, labels


def _binary_batch(tree: FileTree, name: str, num_classes: int) -> Split:
    data = tree.read(name)
    if len(data) == 0 or len(data) % RECORD:
        raise DataError(f"{tree.where(name)}: truncated or corrupt: {len(data)} bytes is not a whole number "
                        f"of {RECORD}-byte records")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    labels = check_labels(records[:, 0], len(records), num_classes, tree.where(name))
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _binary_classes(tree: FileTree, prefix: str) -> tuple[str, ...]:
    name = prefix + "batches.meta.txt"
    if not tree.exists(name):
        return CIFAR10_CLASSES  # the meta file only spells out the fixed CIFAR-10 names
    classes = tuple(line.strip() for line in tree.read(name).decode("utf-8", "replace").splitlines() if line.strip())
    if len(classes) != len(CIFAR10_CLASSES):
        raise DataError(f"{tree.where(name)}: expected {len(CIFAR10_CLASSES)} class names, found {len(classes)}")
    return classes


def load_binary(tree: FileTree, prefix: str) -> tuple[Split, Split, tuple[str, ...], dict]:
    """Both splits of the binary version under `prefix`, plus a checksum report against the published MD5s."""
    train_names = tuple(n + ".bin" for n in TRAIN_BATCHES)
    _require(tree, prefix, train_names, "train")
    _require(tree, prefix, (TEST_BATCH + ".bin",), "test")
    classes = _binary_classes(tree, prefix)
    mismatched = sorted(n for n, md5 in BINARY_MD5.items() if hashlib.md5(tree.read(prefix + n)).hexdigest() != md5)
    train = _concat([_binary_batch(tree, prefix + n, len(classes)) for n in train_names], len(classes),
                    tree.where(prefix + "data_batch_*.bin"))
    test = _binary_batch(tree, prefix + TEST_BATCH + ".bin", len(classes))
    report = {"checksums": "mismatch" if mismatched else "match", "checksum_mismatches": mismatched}
    return train, test, classes, report


def _python_batch(tree: FileTree, name: str, num_classes: int) -> Split:
    where = tree.where(name)
    batch = safe_loads(tree.read(name), where)
    if not isinstance(batch, dict) or "data" not in batch or not ("labels" in batch or "fine_labels" in batch):
        raise DataError(f"{where}: not a CIFAR batch (expected a dict with 'data' and 'labels')")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != RECORD - 1:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' must be uint8 (N, 3072), got {got}")
    labels = check_labels(batch.get("labels", batch.get("fine_labels")), len(data), num_classes, where)
    return data.reshape(-1, 3, 32, 32).copy(), labels


def _python_classes(tree: FileTree, prefix: str) -> tuple[str, ...]:
    name = prefix + "batches.meta"
    if not tree.exists(name):
        return CIFAR10_CLASSES
    meta = safe_loads(tree.read(name), tree.where(name))
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != len(CIFAR10_CLASSES) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{tree.where(name)}: expected 'label_names', a list of {len(CIFAR10_CLASSES)} strings")
    return tuple(names)


def load_python(tree: FileTree, prefix: str) -> tuple[Split, Split, tuple[str, ...], dict]:
    """Both splits of the python version under `prefix`; no per-file official checksums apply (docs/data.md)."""
    _require(tree, prefix, TRAIN_BATCHES, "train")
    _require(tree, prefix, (TEST_BATCH,), "test")
    classes = _python_classes(tree, prefix)
    train = _concat([_python_batch(tree, prefix + n, len(classes)) for n in TRAIN_BATCHES], len(classes),
                    tree.where(prefix + "data_batch_*"))
    test = _python_batch(tree, prefix + TEST_BATCH, len(classes))
    return train, test, classes, {"checksums": "unknown"}
