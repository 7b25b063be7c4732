"""The learning rate as a pure function of the recipe and the position in training."""

from __future__ import annotations

import bisect
import math

from budgetnet.train.recipe import Recipe


def lr_at(recipe: Recipe, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """Learning rate for `step` (0-based) of `epoch` (0-based): multi-step, cosine or linear decay, after a warm-up."""
    if recipe.schedule in ("cosine", "linear"):
        # from the peak at the end of warm-up to 0 at the end of training: half a cosine, or a straight line
        span = recipe.epochs - recipe.warmup_epochs
        done = (epoch + step / steps_per_epoch - recipe.warmup_epochs) / span if span > 0 else 1.0
        done = min(max(done, 0.0), 1.0)
        lr = recipe.lr * (0.5 * (1 + math.cos(math.pi * done)) if recipe.schedule == "cosine" else 1 - done)
    else:
        # epochs at or past a milestone have been decayed: epoch 15 is the first at 0.1x under (15, ...)
        lr = recipe.lr * recipe.gamma ** bisect.bisect_right(recipe.milestones, epoch)
    if recipe.warmup_epochs > 0:
        progress = (epoch + (step + 1) / steps_per_epoch) / recipe.warmup_epochs
        lr *= min(1.0, progress)
    return lr
