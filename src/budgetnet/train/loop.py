"""Training and evaluation as plain functions: `train_one_epoch`, `evaluate`, `fit`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from budgetnet.train.batches import (ImageSet, Normalizer, augment_generator, batch_slices, epoch_order, gather,
                                     train_device)
from budgetnet.train.distributed import SINGLE, Distributed, all_sum
from budgetnet.train.ema import WeightEMA
from budgetnet.train.recipe import Recipe
from budgetnet.train.schedule import lr_at

# an online augmentation: (uint8 images, generator, their row indices, 0-based epoch) -> uint8 images
Augment = Callable[[torch.Tensor, torch.Generator, torch.Tensor, int], torch.Tensor]
EVAL_BATCH = 500  # images per evaluation forward pass; memory only, results do not depend on it
GPU_SYNC_STEPS = 50  # steps between loss reads on a GPU; a NaN is still reported at its exact step


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the weights from before that step are not saved over."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"training loss became {loss} at epoch {epoch + 1}, step {step + 1}")
        self.epoch, self.step, self.loss = epoch, step, loss


@dataclass
class StopRequest:
    """Set `requested` (e.g. from a SIGINT handler) and training stops after the current step."""

    requested: bool = False  # stop at the next step boundary
    armed: bool = False  # True once training runs, so there is something worth saving


@dataclass
class EpochProgress:
    """How far an epoch got: enough to continue it exactly after an interruption."""

    epoch: int  # 0-based epoch this progress belongs to
    step: int = 0  # optimiser steps already taken in this epoch
    loss_sum: float = 0.0  # sum over seen images of the per-image training loss
    correct: int = 0  # training images classified correctly so far
    seen: int = 0  # training images seen so far
    seconds: float = 0.0  # training wall time spent so far in this epoch
    augment_state: torch.Tensor | None = None  # online augmentation generator state, None when unused

    def to_state(self) -> dict[str, Any]:
        """Tensors and plain numbers only, so the checkpoint loads with weights_only=True."""
        return {k: v for k, v in self.__dict__.items()}


class Interrupted(Exception):
    """Training stopped on request; `progress` says where (None: at an epoch boundary)."""

    def __init__(self, epoch: int, progress: EpochProgress | None) -> None:
        super().__init__(f"interrupted in epoch {epoch + 1}")
        self.epoch, self.progress = epoch, progress


@dataclass(frozen=True)
class EvalResult:
    """Mean loss, accuracy (0-1) and every prediction of one evaluation pass."""

    loss: float
    accuracy: float
    predictions: np.ndarray = field(repr=False)  # int64 (N,) predicted class per image
    single_view_accuracy: float | None = None  # with flip TTA, the accuracy of the unflipped view alone


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def sync_interval(device: torch.device) -> int:
    """Steps between host reads of the loss: every step on CPU (free), in groups on a GPU (a read stalls it)."""
    return 1 if device.type == "cpu" else GPU_SYNC_STEPS


def _stop_agreed(stop: StopRequest | None, dist: Distributed, device: torch.device) -> bool:
    """Whether to stop now; with several ranks, all stop when any was asked to, at the same step."""
    wanted = stop is not None and stop.requested
    if dist.enabled:
        wanted = bool(all_sum(torch.tensor([float(wanted)], device=device), dist).item() > 0)
    return wanted


def _gather_states(generator: torch.Generator, dist: Distributed, device: torch.device) -> torch.Tensor:
    """This rank's generator state, or with several ranks every rank's, stacked (world, L), for rank 0 to save."""
    state = generator.get_state()
    if not dist.enabled:
        return state
    mine = state.to(device)  # NCCL gathers GPU tensors only
    states = [torch.empty_like(mine) for _ in range(dist.world_size)]
    torch.distributed.all_gather(states, mine)
    return torch.stack(states).cpu()


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    recipe: Recipe,
    train: ImageSet,
    normalizer: Normalizer,
    epoch: int,
    device: torch.device,
    augment: Augment | None = None,
    progress: EpochProgress | None = None,
    stop: StopRequest | None = None,
    show_bar: bool = True,
    dist: Distributed = SINGLE,
    ema: WeightEMA | None = None,
) -> EpochProgress:
    """Run (or continue) one epoch of SGD on this rank's shard; raises TrainingDiverged or Interrupted."""
    from tqdm import tqdm

    progress = progress or EpochProgress(epoch)
    order = epoch_order(len(train), epoch, recipe.seed, dist.rank, dist.world_size, train_device(train))
    slices = batch_slices(len(order), recipe.batch_size)
    generator = None
    if augment is not None:
        generator = augment_generator(recipe.seed, epoch, dist.rank)
        if progress.augment_state is not None:
            state = progress.augment_state
            generator.set_state(state[dist.rank].clone() if state.dim() == 2 else state)  # a row of its own
    model.train()
    bar = tqdm(total=len(slices), initial=progress.step, desc=f"epoch {epoch + 1}/{recipe.epochs}",
               unit="step", disable=not (show_bar and dist.is_main), leave=False, dynamic_ncols=True)
    start = time.perf_counter() - progress.seconds
    every = sync_interval(device)
    pending: list[torch.Tensor] = []  # per step: [loss x images, correct, images], still on the device

    def settle(first_step: int) -> bool:
        # one host read (and one all-reduce across ranks) for the steps since the last one; it also
        # carries the stop flag, so that all ranks agree to stop at the same step. Returns that agreement.
        rows = torch.stack(pending)
        if dist.enabled:
            rows = torch.cat([rows, rows.new_tensor([[float(stop is not None and stop.requested), 0.0, 0.0]])])
        totals = all_sum(rows, dist).tolist()
        agreed = totals.pop()[0] > 0 if dist.enabled else None
        pending.clear()
        for offset, (loss_sum, correct, n) in enumerate(totals):
            if not np.isfinite(loss_sum):
                bar.close()
                raise TrainingDiverged(epoch, first_step + offset, loss_sum / n)
            progress.step, progress.seen = first_step + offset + 1, progress.seen + int(n)
            progress.loss_sum += loss_sum
            progress.correct += int(correct)
        progress.seconds = time.perf_counter() - start
        bar.update(len(totals))
        bar.set_postfix(loss=f"{progress.loss_sum / progress.seen:.3f}", acc=f"{progress.correct / progress.seen:.3f}",
                        img_s=f"{progress.seen / max(progress.seconds, 1e-9):.0f}")
        return agreed if agreed is not None else (stop is not None and stop.requested)

    first = progress.step
    for step in range(progress.step, len(slices)):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(recipe, epoch, step, len(slices))
        index = order[slices[step]]
        images, labels = gather(train, index)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if generator is not None:
            images = augment(images, generator, index, epoch)
        with _autocast(device, recipe.precision):
            logits = model(normalizer(images))
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update()
        n = torch.full((), float(len(labels)), device=device)  # a fill kernel: no host-to-device copy to wait on
        pending.append(torch.stack([loss.detach() * n, (logits.argmax(1) == labels).sum().float(), n]))
        last = step + 1 == len(slices)
        if len(pending) == every or last:
            stop_now = settle(first)
            first = step + 1
            if stop_now and not last:
                bar.close()
                progress.augment_state = _gather_states(generator, dist, device) if generator is not None else None
                raise Interrupted(epoch, progress)
    bar.close()
    return progress


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
        with _autocast(device, precision):
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


def epoch_metrics(
    progress: EpochProgress, lr: float, test: EvalResult | None, val: EvalResult | None, seconds: float
) -> dict[str, Any]:
    """One `metrics.jsonl` line: 1-based epoch, train/test (and val) loss and accuracy, lr, time, speed."""
    metrics: dict[str, Any] = {
        "epoch": progress.epoch + 1,
        "train_loss": progress.loss_sum / max(progress.seen, 1),
        "train_acc": progress.correct / max(progress.seen, 1),
    }
    if test is not None:
        metrics.update(test_loss=test.loss, test_acc=test.accuracy)
    if test is not None and test.single_view_accuracy is not None:
        metrics["test_acc_single_view"] = test.single_view_accuracy  # test_acc is then the flip-TTA figure
    if val is not None:
        metrics.update(val_loss=val.loss, val_acc=val.accuracy)
        if val.single_view_accuracy is not None:
            metrics["val_acc_single_view"] = val.single_view_accuracy
    metrics.update(lr=lr, seconds=seconds, images_per_s=progress.seen / max(progress.seconds, 1e-9))
    return metrics


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    recipe: Recipe,
    train: ImageSet,
    test: ImageSet | None,
    normalizer: Normalizer,
    device: torch.device,
    val: ImageSet | None = None,
    augment: Augment | None = None,
    start_epoch: int = 0,
    progress: EpochProgress | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    on_interrupt: Callable[[Interrupted], None] | None = None,
    stop: StopRequest | None = None,
    show_bar: bool = True,
    dist: Distributed = SINGLE,
    ema: WeightEMA | None = None,
    eval_model: nn.Module | None = None,
) -> list[dict[str, Any]]:
    """Train from `start_epoch` (continuing `progress` if given) to `recipe.epochs`; returns each epoch's metrics.

    With an `ema`, the averaged weights are the ones evaluated and reported. Otherwise `eval_model` (default
    `model`) is: pass the plain module when `model` is wrapped in DDP or torch.compile, so that evaluation
    goes through neither the gradient-sync wrapper nor a recompile for eval mode and odd batch sizes.
    With `test` None (an architecture search's proxy), the test set is never touched and only `val` is evaluated.
    """
    history = []
    evaluated = ema.module if ema is not None else (eval_model if eval_model is not None else model)
    if stop is not None:
        stop.armed = True
    for epoch in range(start_epoch, recipe.epochs):
        started = time.perf_counter() - (progress.seconds if progress is not None else 0.0)
        try:
            done = train_one_epoch(model, optimizer, recipe, train, normalizer, epoch, device,
                                   augment, progress, stop, show_bar, dist, ema)
        except Interrupted as e:
            if on_interrupt is not None:
                on_interrupt(e)
            raise
        progress = None
        lr = optimizer.param_groups[0]["lr"]
        measured = (epoch + 1) % recipe.eval_every == 0 or epoch + 1 == recipe.epochs
        test_result = val_result = None
        if measured and test is not None:
            test_result = evaluate(evaluated, test, normalizer, device, recipe.precision, recipe.tta, dist=dist)
        if measured and val is not None:
            val_result = evaluate(evaluated, val, normalizer, device, recipe.precision, recipe.tta, dist=dist)
        metrics = epoch_metrics(done, lr, test_result, val_result, time.perf_counter() - started)
        history.append(metrics)
        if on_epoch_end is not None:
            on_epoch_end(metrics)
        if _stop_agreed(stop, dist, device) and epoch + 1 < recipe.epochs:
            raise Interrupted(epoch + 1, None)
    return history
