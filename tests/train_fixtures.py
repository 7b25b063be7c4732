"""Tiny synthetic CIFAR-shaped data and a tiny spec for the training tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from budgetnet.spec import ResNetSpec, StageSpec
from data_fixtures import binary_records

TINY_SPEC = ResNetSpec((StageSpec(1, 8),), stem_width=8)  # 1,506 params: trains in milliseconds


@dataclass(frozen=True)
class FakeCifar:
    """The fields of budgetnet.data.CifarData that training reads, filled with random pixels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    source: dict


def fake_cifar(n_train: int = 64, n_test: int = 20, seed: int = 0) -> FakeCifar:
    """Random images whose class shifts the mean colour, so a tiny net can learn a little."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n).astype(np.int64)
        images = rng.integers(0, 128, (n, 3, 32, 32)) + (labels * 12)[:, None, None, None]
        return images.astype(np.uint8), labels

    train, test = make(n_train), make(n_test)
    source = {"format": "binary", "path": "synthetic", "fingerprint": f"synthetic-{seed}",
              "checksums": "unknown", "lossy": False}
    return FakeCifar(*train, *test, tuple(f"class{i}" for i in range(10)), source)


def write_binary_cifar(folder, n_per_batch: int = 10, n_test: int = 20, seed: int = 0):
    """A tiny dataset in the official binary layout (5 train batches + test batch, 3073-byte records)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = fake_cifar(5 * n_per_batch, n_test, seed)
    for b in range(5):
        part = slice(b * n_per_batch, (b + 1) * n_per_batch)
        (folder / f"data_batch_{b + 1}.bin").write_bytes(binary_records(data.train_images[part], data.train_labels[part]))
    (folder / "test_batch.bin").write_bytes(binary_records(data.test_images, data.test_labels))
    (folder / "batches.meta.txt").write_text("\n".join(data.classes) + "\n")
    return folder
