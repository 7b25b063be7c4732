"""The real images a deploy step checks against: the run's recorded dataset, or one the user names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from budgetnet.errors import BudgetnetError, DataError
from budgetnet.runrecord import Checkpoint


@dataclass(frozen=True)
class Reference:
    """A batch of uint8 (N, 3, 32, 32) images and a sentence saying where they came from."""

    images: np.ndarray
    description: str
    real: bool  # False when no data was reachable and the images are random noise


def run_data_path(recorded: dict[str, Any], data: str | Path | None) -> str | None:
    """The dataset to use: the one given, else the `recorded` source's path (a run's or an export's)."""
    return str(data) if data is not None else recorded.get("path")


def load_dataset(path: str | Path) -> Any:
    """load_cifar(path), imported only when a dataset is really needed."""
    from budgetnet.data import load_cifar

    return load_cifar(path)


def describe_source(source: dict[str, Any]) -> str:
    """`path (format, lossless|lossy JPEG copy)` for messages and the card."""
    kind = "lossy JPEG copy" if source.get("lossy") else "lossless"
    return f"{source.get('path', '?')} ({source.get('format', '?')}, {kind})"


def reference_images(checkpoint: Checkpoint, data: str | Path | None, count: int = 256) -> Reference:
    """The first `count` test images of the run's data; seeded random images, labelled so, if none is reachable."""
    path = run_data_path(checkpoint.data.source, data)
    reason = "the run records no data path and none was given"
    if path is not None:
        try:
            dataset = load_dataset(path)
            images = np.ascontiguousarray(dataset.test_images[:count])
            return Reference(images, f"the first {len(images)} test images of {describe_source(dataset.source)}", True)
        except (BudgetnetError, OSError, ImportError) as e:
            reason = f"cannot load {path}: {e}"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
    return Reference(images, f"{count} RANDOM noise images, not real ones ({reason}; pass --data PATH)", False)


def require_dataset(path: str | Path | None) -> Any:
    """Load the dataset at `path`, or a DataError telling the user to pass --data."""
    if path is None:
        raise DataError("no dataset: the run records no data path; pass --data PATH")
    return load_dataset(path)
