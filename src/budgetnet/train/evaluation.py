"""Evaluation: mean loss and accuracy of a model on a row set, optionally with flip TTA, summed over ranks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from budgetnet.train.batches import ImageSet, Normalizer, gather
from budgetnet.train.distributed import SINGLE, Distributed, all_sum
from budgetnet.train.precision import autocast

EVAL_BATCH = 500  # images per evaluation forward pass; memory only, results do not depend on it


@dataclass(frozen=True)
class EvalResult:
    """Mean loss, accuracy (0-1) and every prediction of one evaluation pass."""

    loss: float
    accuracy: float
    predictions: np.ndarray = field(repr=False)  # int64 (N,) predicted class per image
    single_view_accuracy: float | None = None  # with flip TTA, the accuracy of the unflipped view alone


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: ImageSet,
    normalizer: Normalizer,
    device: torch.device,
    precision: str = "fp32",
    tta: bool = False,
    batch_size: int = EVAL_BATCH,
    dist: Distributed = SINGLE,
) -> EvalResult:
    """Mean cross-entropy and accuracy on `data` (summed over ranks, each taking every world_size-th image).

    `tta` averages the softmax of each image and its mirror. `predictions` holds this rank's images only.
    """
    model.eval()
    mine = torch.arange(dist.rank, len(data), dist.world_size)
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, correct, images, correct unflipped
    predictions = []
    for start in range(0, len(mine), batch_size):
        images, labels = gather(data, mine[start : start + batch_size])
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        x = normalizer(images)
        with autocast(device, precision):
            logits = model(x).float()
            if tta:
                probs = (logits.softmax(1) + model(x.flip(3)).float().softmax(1)) / 2
        if tta:
            loss = F.nll_loss(probs.clamp_min(1e-12).log(), labels, reduction="sum")
            predicted = probs.argmax(1)
        else:
            loss = F.cross_entropy(logits, labels, reduction="sum")
            predicted = logits.argmax(1)
        totals += torch.stack([loss.double(), (predicted == labels).sum().double(),
                               torch.full((), float(len(labels)), dtype=torch.float64, device=device),
                               (logits.argmax(1) == labels).sum().double()])
        predictions.append(predicted.cpu())
    loss_sum, correct, count, correct_single = all_sum(totals, dist).tolist()
    pred = torch.cat(predictions).numpy() if predictions else np.zeros(0, dtype=np.int64)
    count = max(count, 1)
    return EvalResult(loss_sum / count, correct / count, pred, correct_single / count if tta else None)
