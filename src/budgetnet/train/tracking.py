"""TensorBoard events for a run (`train --tensorboard`): each epoch's metrics and the lr of every step.

`metrics.jsonl` stays the record: the events are a view of it for TensorBoard, written by torch's own
SummaryWriter (the `tensorboard` package, extra `tensorboard`). The lr of each step is the recipe's
pure schedule evaluated at that step, so the training loop itself logs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from budgetnet.train.recipe import Recipe
from budgetnet.train.schedule import lr_at

NOT_SCALARS = ("epoch", "steps")  # metrics.jsonl keys that are the axis, not a curve


class TensorBoardLog:
    """Writes one run's events under `log_dir`, appending when a run is resumed.

    An epoch is logged after its checkpoint is saved, so an interrupted run never logs an epoch twice:
    at worst the epoch it was killed in is missing from the events, never from metrics.jsonl.
    """

    def __init__(self, log_dir: Path, recipe: Recipe) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.recipe = recipe
        self.writer = SummaryWriter(str(log_dir))

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        """Log an epoch's metrics (x: the 1-based epoch) and its per-step lr (x: the global step)."""
        epoch, steps = metrics["epoch"], int(metrics["steps"])
        for key, value in metrics.items():
            if key not in NOT_SCALARS and isinstance(value, (int, float)):
                self.writer.add_scalar(f"epoch/{key}", value, epoch)
        for step in range(steps):
            self.writer.add_scalar("step/lr", lr_at(self.recipe, epoch - 1, step, steps), (epoch - 1) * steps + step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
