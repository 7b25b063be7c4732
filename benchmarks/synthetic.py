"""Random CIFAR-shaped data for the speed benchmarks: how fast a network trains does not depend on the pixels."""

from __future__ import annotations

import numpy as np

from budgetnet.train.batches import Normalizer

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10 training-set statistics, 0-1 units


def random_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` random uint8 images of 3x32x32 and `n` random labels of 10 classes; the same for the same seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


def cifar_normalizer() -> Normalizer:
    """Normalises with CIFAR-10's fixed statistics, as a run computes them from its training images."""
    return Normalizer(MEAN, STD)
