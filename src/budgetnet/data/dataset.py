"""The decoded dataset every loader returns, and the checks that keep a malformed one out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetnet.errors import DataError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class CifarData:
    """Both splits as uint8 (N, 3, 32, 32) images and int64 labels, the class names and where they came from."""

    train_images: np.ndarray  # uint8 (N, 3, 32, 32), RGB planes
    train_labels: np.ndarray  # int64 (N,), in [0, len(classes))
    test_images: np.ndarray  # uint8 (M, 3, 32, 32)
    test_labels: np.ndarray  # int64 (M,)
    classes: tuple[str, ...]
    source: dict  # JSON-ready: format, path, fingerprint, checksums ("match"|"mismatch"|"unknown"), lossy


def check_labels(labels: object, count: int, num_classes: int, where: str) -> np.ndarray:
    """Labels as int64 (count,), or a DataError naming `where` if they are not integers in range."""
    array = np.asarray(labels)
    if array.shape != (count,) or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise DataError(f"{where}: expected {count} integer labels, got shape {array.shape} dtype {array.dtype}")
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{where}: label {array[i]} at index {i} is out of range 0-{num_classes - 1}")
    return array


def check_split(images: np.ndarray, labels: np.ndarray, num_classes: int, where: str) -> None:
    """Refuse a split that is empty, not uint8 (N, 3, 32, 32), or whose labels don't match it."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{where}: images must be uint8 (N, 3, 32, 32), got {images.dtype} {images.shape}")
    if len(images) == 0:
        raise DataError(f"{where}: the split holds no images")
    check_labels(labels, len(images), num_classes, where)
