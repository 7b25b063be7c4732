"""The learning rate as a pure function of the recipe and the position in training."""

from __future__ import annotations

import bisect

from budgetnet.train.recipe import Recipe


def lr_at(recipe: Recipe, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """Learning rate for `step` (0-based) of `epoch` (0-based): multi-step decay after optional linear warm-up."""
    # epochs at or past a milestone have been decayed: epoch 15 is the first at 0.1x under (15, ...)
    decays = bisect.bisect_right(recipe.milestones, epoch)
    lr = recipe.lr * recipe.gamma**decays
    if recipe.warmup_epochs > 0:
        progress = (epoch + (step + 1) / steps_per_epoch) / recipe.warmup_epochs
        lr *= min(1.0, progress)
    return lr
