"""Training: a step, the periodic host sync (StepMeter), an epoch, and `fit` (evaluation is in train.evaluation).

An epoch is `train_step` per batch, with a `StepMeter` that reads the per-step sums from the device every
few steps (checking for divergence and agreeing on a stop) and draws the progress bar. What the steps
share travels in one EpochState; what never changes during a run, in one Setup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from budgetnet.train.batches import (ImageSet, Normalizer, augment_generator, batch_slices, epoch_order, gather,
                                     train_device)
from budgetnet.train.distributed import SINGLE, Distributed, all_sum
from budgetnet.train.ema import Lookahead, WeightEMA
from budgetnet.train.evaluation import EvalResult, evaluate
from budgetnet.train.precision import autocast
from budgetnet.train.recipe import Recipe
from budgetnet.train.schedule import lr_at

# an online augmentation: (uint8 images, generator, their row indices, 0-based epoch) -> uint8 images
Augment = Callable[[torch.Tensor, torch.Generator, torch.Tensor, int], torch.Tensor]
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


@dataclass
class Trainee:
    """The model as trained (maybe DDP-wrapped and compiled), its plain module, optimiser and weight average."""

    module: nn.Module  # the plain ResNet: its state_dict is what checkpoints hold, and what is evaluated without EMA
    trained: nn.Module  # what the loop calls: `module`, wrapped in DDP and/or compiled as asked
    optimizer: torch.optim.Optimizer
    ema: WeightEMA | None = None
    lookahead: Lookahead | None = None

    @property
    def evaluated(self) -> nn.Module:
        """The weights a run reports: the average with an EMA, else the plain module (not the DDP/compile
        wrapper, so evaluation needs neither gradient sync nor a recompile for eval mode and odd batches)."""
        return self.ema.module if self.ema is not None else self.module


@dataclass(frozen=True)
class Setup:
    """What every step of a run uses and no step changes: the recipe, the training rows and where it runs."""

    recipe: Recipe
    train: ImageSet
    normalizer: Normalizer
    device: torch.device
    augment: Augment | None = None  # an online augmentation, None for the offline store or none
    dist: Distributed = SINGLE


@dataclass
class EpochState:
    """What the steps of one epoch share: its row order, its batches, its augmentation stream, how far it got."""

    epoch: int
    order: torch.Tensor  # this rank's row indices, in this epoch's order
    slices: Sequence[slice]  # each step's positions within `order`
    generator: torch.Generator | None  # the online augmentation's stream, None without one
    progress: EpochProgress

    @classmethod
    def start(cls, setup: Setup, epoch: int, progress: EpochProgress | None) -> EpochState:
        """The epoch's order and batches, continuing `progress` (and its augmentation stream) if given."""
        recipe, dist = setup.recipe, setup.dist
        progress = progress or EpochProgress(epoch)
        order = epoch_order(len(setup.train), epoch, recipe.seed, dist.rank, dist.world_size, train_device(setup.train))
        generator = None
        if setup.augment is not None:
            generator = augment_generator(recipe.seed, epoch, dist.rank)
            if progress.augment_state is not None:
                state = progress.augment_state
                generator.set_state(state[dist.rank].clone() if state.dim() == 2 else state)  # a row of its own
        return cls(epoch, order, batch_slices(len(order), recipe.batch_size), generator, progress)


def scale_down(images: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised images resized to size x size, averaging (antialiased bilinear) rather than skipping pixels."""
    resized = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.contiguous(memory_format=torch.channels_last)


def train_step(trainee: Trainee, setup: Setup, state: EpochState, step: int) -> torch.Tensor:
    """One SGD step on batch `step`; returns [loss x images, correct, images], left on the device."""
    recipe, device = setup.recipe, setup.device
    lr = lr_at(recipe, state.epoch, step, len(state.slices))
    for group in trainee.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    index = state.order[state.slices[step]]
    images, labels = gather(setup.train, index)
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    if state.generator is not None:
        images = setup.augment(images, state.generator, index, state.epoch)
    inputs = setup.normalizer(images)
    if state.epoch < recipe.low_res_epochs:
        inputs = scale_down(inputs, recipe.low_res_size)
    with autocast(device, recipe.precision):
        logits = trainee.trained(inputs)
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
    trainee.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    trainee.optimizer.step()
    if trainee.lookahead is not None:
        steps = len(state.slices)
        trainee.lookahead.after_step(state.epoch * steps + step + 1, recipe.epochs * steps)
    if trainee.ema is not None:
        trainee.ema.update()
    n = torch.full((), float(len(labels)), device=device)  # a fill kernel: no host-to-device copy to wait on
    return torch.stack([loss.detach() * n, (logits.argmax(1) == labels).sum().float(), n])


def progress_bar(setup: Setup, state: EpochState, show: bool) -> Any:
    """The epoch's tqdm bar in steps, drawn by rank 0 only, starting where `state` got to."""
    from tqdm import tqdm

    return tqdm(total=len(state.slices), initial=state.progress.step,
                desc=f"epoch {state.epoch + 1}/{setup.recipe.epochs}", unit="step",
                disable=not (show and setup.dist.is_main), leave=False, dynamic_ncols=True)


class StepMeter:
    """The periodic host sync of an epoch.

    Each step's sums stay on the device until `settle` reads the steps since the last read in one
    transfer (with several ranks, one all-reduce that also carries the stop flag, so that every rank
    stops at the same step). It checks each step for divergence and advances the progress and the bar.
    """

    def __init__(self, setup: Setup, state: EpochState, stop: StopRequest | None, bar: Any) -> None:
        self.setup, self.state, self.stop, self.bar = setup, state, stop, bar
        self.every = sync_interval(setup.device)
        self.pending: list[torch.Tensor] = []
        self.first = state.progress.step  # the step of pending[0]
        self.start = time.perf_counter() - state.progress.seconds

    def add(self, row: torch.Tensor) -> bool:
        """Keep one step's sums; True when a host read is due."""
        self.pending.append(row)
        return len(self.pending) == self.every

    def settle(self) -> bool:
        """Read the pending steps (raises TrainingDiverged at the first non-finite loss); True if all agree to stop."""
        dist, progress = self.setup.dist, self.state.progress
        rows = torch.stack(self.pending)
        if dist.enabled:
            rows = torch.cat([rows, rows.new_tensor([[float(self.stop is not None and self.stop.requested), 0.0, 0.0]])])
        totals = all_sum(rows, dist).tolist()
        agreed = totals.pop()[0] > 0 if dist.enabled else self.stop is not None and self.stop.requested
        for offset, (loss_sum, correct, n) in enumerate(totals):
            if not np.isfinite(loss_sum):
                self.bar.close()
                raise TrainingDiverged(self.state.epoch, self.first + offset, loss_sum / n)
            progress.step, progress.seen = self.first + offset + 1, progress.seen + int(n)
            progress.loss_sum += loss_sum
            progress.correct += int(correct)
        self.first += len(self.pending)
        self.pending.clear()
        progress.seconds = time.perf_counter() - self.start
        self.bar.update(len(totals))
        self.bar.set_postfix(loss=f"{progress.loss_sum / progress.seen:.3f}", acc=f"{progress.correct / progress.seen:.3f}",
                             img_s=f"{progress.seen / max(progress.seconds, 1e-9):.0f}")
        return agreed


def train_one_epoch(trainee: Trainee, setup: Setup, epoch: int, progress: EpochProgress | None = None,
                    stop: StopRequest | None = None, show_bar: bool = True) -> EpochProgress:
    """Run (or continue) one epoch of SGD on this rank's shard; raises TrainingDiverged or Interrupted."""
    state = EpochState.start(setup, epoch, progress)
    trainee.trained.train()
    bar = progress_bar(setup, state, show_bar)
    meter = StepMeter(setup, state, stop, bar)
    for step in range(state.progress.step, len(state.slices)):
        due = meter.add(train_step(trainee, setup, state, step))
        last = step + 1 == len(state.slices)
        if (due or last) and meter.settle() and not last:
            bar.close()
            if state.generator is not None:
                state.progress.augment_state = _gather_states(state.generator, setup.dist, setup.device)
            raise Interrupted(epoch, state.progress)
    bar.close()
    return state.progress


def view_metrics(split: str, result: EvalResult) -> dict[str, float]:
    """`{split}_loss` and `{split}_acc` (the TTA figure, with TTA), plus the accuracies of fewer views: the
    unflipped view alone (`_single_view`) and, with shifted views, the unshifted mirror pair (`_flip`)."""
    metrics = {f"{split}_loss": result.loss, f"{split}_acc": result.accuracy}
    if result.single_view_accuracy is not None:
        metrics[f"{split}_acc_single_view"] = result.single_view_accuracy
    if result.flip_accuracy is not None:
        metrics[f"{split}_acc_flip"] = result.flip_accuracy
    return metrics


def epoch_metrics(
    progress: EpochProgress, lr: float, test: EvalResult | None, val: EvalResult | None, seconds: float
) -> dict[str, Any]:
    """One `metrics.jsonl` line: 1-based epoch, train/test (and val) loss and accuracy, lr, time (in all and
    training alone), speed."""
    metrics: dict[str, Any] = {
        "epoch": progress.epoch + 1,
        "train_loss": progress.loss_sum / max(progress.seen, 1),
        "train_acc": progress.correct / max(progress.seen, 1),
    }
    for split, result in (("test", test), ("val", val)):
        if result is not None:
            metrics.update(view_metrics(split, result))
    metrics.update(lr=lr, seconds=seconds, train_seconds=progress.seconds,
                   images_per_s=progress.seen / max(progress.seconds, 1e-9),
                   steps=progress.step)  # optimiser steps this epoch, on each rank
    return metrics


@dataclass(frozen=True)
class FitHooks:
    """What a caller does at an epoch's end (write metrics, save) and when training is interrupted (save)."""

    on_epoch_end: Callable[[dict[str, Any]], None] | None = None
    on_interrupt: Callable[[Interrupted], None] | None = None


def fit(trainee: Trainee, setup: Setup, test: ImageSet | None, val: ImageSet | None = None, start_epoch: int = 0,
        progress: EpochProgress | None = None, hooks: FitHooks = FitHooks(), stop: StopRequest | None = None,
        show_bar: bool = True) -> list[dict[str, Any]]:
    """Train from `start_epoch` (continuing `progress` if given) to the recipe's epochs; returns each epoch's metrics.

    `trainee.evaluated` (the EMA's average, else the plain module) is what is evaluated and reported.
    With `test` None (an architecture search's proxy), the test set is never touched and only `val` is evaluated.
    """
    recipe, dist, device = setup.recipe, setup.dist, setup.device
    history = []
    if stop is not None:
        stop.armed = True
    for epoch in range(start_epoch, recipe.epochs):
        started = time.perf_counter() - (progress.seconds if progress is not None else 0.0)
        try:
            done = train_one_epoch(trainee, setup, epoch, progress, stop, show_bar)
        except Interrupted as e:
            if hooks.on_interrupt is not None:
                hooks.on_interrupt(e)
            raise
        progress = None
        lr = trainee.optimizer.param_groups[0]["lr"]
        measured = recipe.tests_after(epoch + 1)
        test_result = val_result = None
        if measured and test is not None:
            test_result = evaluate(trainee.evaluated, test, setup.normalizer, device, recipe.precision, recipe.tta,
                                   dist=dist, tta_shift=recipe.tta_shift)
        if measured and val is not None:
            val_result = evaluate(trainee.evaluated, val, setup.normalizer, device, recipe.precision, recipe.tta,
                                  dist=dist, tta_shift=recipe.tta_shift)
        metrics = epoch_metrics(done, lr, test_result, val_result, time.perf_counter() - started)
        history.append(metrics)
        if hooks.on_epoch_end is not None:
            hooks.on_epoch_end(metrics)
        if _stop_agreed(stop, dist, device) and epoch + 1 < recipe.epochs:
            raise Interrupted(epoch + 1, None)
    return history
