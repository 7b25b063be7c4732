"""Inference throughput, measured the same way for every backend so ratios are fair."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def images_per_second(
    run: Callable[[np.ndarray], object], inputs: np.ndarray, batch_size: int, min_seconds: float = 2.0
) -> float:
    """Images/s of `run` on batches of `batch_size` rows of `inputs`, after two warm-up calls.

    Repeats the same batch until `min_seconds` have passed, so batch-1 rates average many calls.
    """
    batch = np.ascontiguousarray(inputs[:batch_size])
    if len(batch) < batch_size:
        batch = np.ascontiguousarray(np.resize(inputs, (batch_size, *inputs.shape[1:])))
    for _ in range(2):  # first calls allocate buffers and pick kernels
        run(batch)
    calls, start = 0, time.perf_counter()
    while True:
        run(batch)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls * batch_size / elapsed
