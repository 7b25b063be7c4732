"""How long the rest of a run should take, from the epochs it has finished (the epoch lines print it).

Each remaining epoch is expected to train as long as the latest finished epoch of its image size, and each
remaining test pass to take as long as the latest one (none is counted before the first has been
measured). Before any full-size epoch has finished, a recipe with low-res epochs expects the full-size ones
to train as much longer as they have more pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from budgetnet.train.recipe import Recipe


def seconds_left(history: Sequence[dict[str, Any]], recipe: Recipe, image_size: int) -> float | None:
    """Expected seconds from the end of `history`'s last epoch to the run's end; None before any epoch.

    `history` holds metrics.jsonl lines in order; lines without `train_seconds` (runs from before it was
    recorded) count their whole `seconds` as training."""
    if not history:
        return None
    train: dict[bool, float] = {}  # low-res or not -> training seconds of the latest such epoch
    test_pass = 0.0
    for line in history:
        epoch_seconds = line["seconds"]
        trained = line.get("train_seconds", epoch_seconds)
        train[line["epoch"] <= recipe.low_res_epochs] = trained
        if "train_seconds" in line and recipe.tests_after(line["epoch"]):
            test_pass = max(epoch_seconds - trained, 0.0)
    if False not in train:  # only low-res epochs so far
        train[False] = train[True] * (image_size / recipe.low_res_size) ** 2
    left = 0.0
    for epoch in range(history[-1]["epoch"] + 1, recipe.epochs + 1):
        left += train[epoch <= recipe.low_res_epochs] + (test_pass if recipe.tests_after(epoch) else 0.0)
    return left


def time_left_text(seconds: float | None) -> str:
    """`seconds_left`'s answer for the epoch line: "" at the end (or before the start), else ", about N min left"."""
    if not seconds:
        return ""
    if seconds < 90:
        return f", about {seconds:.0f} s left"
    return f", about {seconds / 60:.0f} min left"
