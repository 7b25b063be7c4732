"""Evaluation: mean loss and accuracy of a model on a row set, optionally with test-time augmentation (TTA),
summed over ranks."""

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
    single_view_accuracy: float | None = None  # with TTA, the accuracy of the unflipped view alone
    flip_accuracy: float | None = None  # with shifted TTA views, the accuracy of the unshifted mirror pair alone


def tta_views(x: torch.Tensor, shift: int = 0) -> list[torch.Tensor]:
    """The test-time views of a batch (N, C, H, W): the images and their mirrors, then, with `shift` px,
    both moved diagonally by +shift and by -shift px (reflect-padded): 2 or 6 views."""
    views = [x, x.flip(3)]
    if shift:
        height, width = x.shape[-2:]
        padded = F.pad(x, (shift,) * 4, mode="reflect")
        for moved in (padded[..., :height, :width], padded[..., 2 * shift :, 2 * shift :]):
            views += [moved, moved.flip(3)]
    return views


def _mean_probs(logits: list[torch.Tensor]) -> torch.Tensor:
    """Softmax averaged over views: the unshifted mirror pair weighs half, the shifted views share the rest."""
    pair = (logits[0].softmax(1) + logits[1].softmax(1)) / 2
    if len(logits) == 2:
        return pair
    shifted = torch.stack([v.softmax(1) for v in logits[2:]]).mean(0)
    return (pair + shifted) / 2


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
    tta_shift: int = 0,
) -> EvalResult:
    """Mean cross-entropy and accuracy on `data` (summed over ranks, each taking every world_size-th image).

    `tta` averages the softmax of each image and its mirror; with `tta_shift` also of both shifted by
    +-tta_shift px (see `tta_views`). `predictions` holds this rank's images only.
    """
    model.eval()
    mine = torch.arange(dist.rank, len(data), dist.world_size)
    # loss sum, correct, images, correct unflipped, correct unshifted pair
    totals = torch.zeros(5, dtype=torch.float64, device=device)
    predictions = []
    for start in range(0, len(mine), batch_size):
        images, labels = gather(data, mine[start : start + batch_size])
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        x = normalizer(images)
        with autocast(device, precision):
            views = tta_views(x, tta_shift) if tta else [x]
            logits = [model(v).float() for v in views]
        if tta:
            probs = _mean_probs(logits)
            loss = F.nll_loss(probs.clamp_min(1e-12).log(), labels, reduction="sum")
            predicted = probs.argmax(1)
            pair = _mean_probs(logits[:2]).argmax(1) if tta_shift else predicted
        else:
            loss = F.cross_entropy(logits[0], labels, reduction="sum")
            predicted = pair = logits[0].argmax(1)
        totals += torch.stack([loss.double(), (predicted == labels).sum().double(),
                               torch.full((), float(len(labels)), dtype=torch.float64, device=device),
                               (logits[0].argmax(1) == labels).sum().double(), (pair == labels).sum().double()])
        predictions.append(predicted.cpu())
    loss_sum, correct, count, correct_single, correct_pair = all_sum(totals, dist).tolist()
    pred = torch.cat(predictions).numpy() if predictions else np.zeros(0, dtype=np.int64)
    count = max(count, 1)
    return EvalResult(loss_sum / count, correct / count, pred, correct_single / count if tta else None,
                      correct_pair / count if tta and tta_shift else None)
