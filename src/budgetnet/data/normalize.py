"""Per-channel normalisation of uint8 images, done on whatever device the batch is on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def channel_stats(images: np.ndarray, chunk: int = 10_000) -> tuple[list[float], list[float]]:
    """Per-channel mean and population std of uint8 (N, 3, H, W) images, in 0-1 units."""
    total = np.zeros(images.shape[1], dtype=np.float64)
    total_sq = np.zeros(images.shape[1], dtype=np.float64)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].astype(np.float64) / 255.0
        total += block.sum(axis=(0, 2, 3))
        total_sq += (block**2).sum(axis=(0, 2, 3))
    count = len(images) * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean.tolist(), std.tolist()


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, C, H, W) to float32 (x / 255 - mean) / std, on the images' device."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean_t) / std_t
