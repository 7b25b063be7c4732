"""Per-channel normalisation of uint8 images, done on whatever device the batch is on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def channel_stats(images: np.ndarray, chunk: int = 2048) -> tuple[list[float], list[float]]:
    """Per-channel mean and population std of uint8 (N, 3, H, W) images, in 0-1 units."""
    # a histogram of the 256 levels per channel gives the sums of x and x^2 as exact integers: no float64 copy of
    # the images (which made this the slowest step of a store build) and no rounding until the final division
    hist = np.zeros((images.shape[1], 256), dtype=np.int64)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk]
        for c in range(images.shape[1]):
            hist[c] += np.bincount(block[:, c].reshape(-1), minlength=256)
    levels = np.arange(256, dtype=np.int64)
    count = len(images) * images.shape[2] * images.shape[3]
    sums, squares = [int(t) for t in hist @ levels], [int(t) for t in hist @ (levels * levels)]
    mean = [total / (255 * count) for total in sums]
    std = [((count * sq - total * total) / (255 * 255 * count * count)) ** 0.5 for total, sq in zip(sums, squares)]
    return mean, std


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, C, H, W) to float32 (x / 255 - mean) / std, on the images' device."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean_t) / std_t
