"""The paper's Figures 1-6 in one grid: originals on top, then each of the five augmentations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from budgetnet.data.augment import COPIES, COPY_NAMES, augment_copy, sample_params
from budgetnet.data.dataset import CifarData
from budgetnet.fsutil import atomic_path


def pick_examples(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of the first image of each class, in class order, then the next ones, up to `count`."""
    first = [int(np.argmax(labels == c)) for c in np.unique(labels)]
    rest = [i for i in range(len(labels)) if i not in set(first)]
    return np.array((first + rest)[:count])


def augmentation_grid(data: CifarData, path: Path, seed: int = 0, count: int = 10) -> None:
    """Write a PNG grid: one column per example image, row 0 the originals, rows 1-5 copies 1-5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = pick_examples(data.train_labels, count)
    images = torch.from_numpy(data.train_images[index])
    params = sample_params(len(index), torch.Generator().manual_seed(seed))
    rows = [augment_copy(c, images, params).permute(0, 2, 3, 1).numpy() for c in range(COPIES)]
    fig, axes = plt.subplots(COPIES, len(index), figsize=(1.1 * len(index) + 1.2, 1.25 * COPIES), squeeze=False)
    for r, row in enumerate(rows):
        for col, image in enumerate(row):
            ax = axes[r, col]
            ax.imshow(image, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_xlabel(data.classes[data.train_labels[index[col]]], fontsize=8)
            if col == 0:
                ax.set_ylabel(f"({r}) {COPY_NAMES[r]}" if r else "original", fontsize=8)
    fig.suptitle(f"Offline augmentations of the paper's section 2.1 (seed {seed})", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
