"""Tiny synthetic CIFAR-shaped data and a tiny spec for the training tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetnet.spec import ResNetSpec, StageSpec

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
