"""The proxy a search ranks networks by: a short training on a training subset, scored on held-out training images.

The test split is dropped as soon as the data is loaded, so nothing in a search can read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from budgetnet.spec import ResNetSpec
from budgetnet.train.loop import FitHooks, Setup, StopRequest, fit
from budgetnet.train.prepare import PreparedData
from budgetnet.train.recipe import Recipe
from budgetnet.train.reproduce import named_recipe

PROXY_BATCH = 128  # images per step: a few thousand images give enough steps for the cpu recipe's shape
PROXY_LR = 0.2  # the cpu recipe's 0.4 at batch 512, scaled by the square root of the batch ratio
LATENCY_SECONDS = 0.5  # timed inference per latency measurement, after warm-up


@dataclass(frozen=True)
class Proxy:
    """How every trial (and every reference preset) is trained and scored."""

    epochs: int = 2  # passes over the proxy's training images
    subset: int = 5_000  # training images each trial trains on
    val_split: int = 2_000  # further training images held out: the score is accuracy on these
    seed: int = 0  # init, order, augmentation and which images are held out

    def recipe(self, device: torch.device) -> Recipe:
        """The cpu recipe shortened to `epochs` (warm-up and decay scale along), validated every epoch, without
        weight averaging (EMA, Lookahead), ghost BatchNorm or TTA: the proxy trains as it was measured (search.md).

        Its "auto" precision is resolved for `device` as `budgetnet train` does: bf16 where it runs natively.
        """
        from budgetnet.train.precision import choose_precision

        precision, _, _ = choose_precision("auto", device)  # "auto" never warns
        # eval_every 1: every epoch's val_acc goes to the pruner
        return named_recipe("cpu", self.epochs, subset=self.subset + self.val_split, val_split=self.val_split,
                            seed=self.seed, batch_size=PROXY_BATCH, lr=PROXY_LR, ema_decay=0.0, lookahead=0,
                            ghost_batch=0, tta=False, eval_every=1, precision=precision)


def without_test(data: Any) -> Any:
    """The loaded data with an empty test split, so that a search cannot look at it."""
    return dataclasses.replace(data, test_images=data.test_images[:0], test_labels=data.test_labels[:0])


def train(spec: ResNetSpec, recipe: Recipe, prepared: PreparedData, device: torch.device,
          on_epoch: Callable[[dict[str, Any]], None], stop: StopRequest) -> list[dict[str, Any]]:
    """Train `spec` with the proxy recipe; each epoch's metrics (val_acc among them) go to `on_epoch`."""
    from budgetnet.train.distributed import SINGLE
    from budgetnet.train.session import batch_augmentation, build_trainee, whitening_images

    whitening = whitening_images(prepared, device) if spec.stem == "whiten" else None
    trainee = build_trainee(spec, recipe, device, SINGLE, None, whitening)
    setup = Setup(recipe, prepared.train, prepared.normalizer, device, batch_augmentation(recipe), SINGLE)
    return fit(trainee, setup, None, prepared.val, hooks=FitHooks(on_epoch_end=on_epoch), stop=stop, show_bar=False)


def latency_ms(spec: ResNetSpec, batch: int, device: torch.device) -> float:
    """Steady-state milliseconds per forward pass of `batch` images on this machine (fp32, eval mode)."""
    from budgetnet.deploy.speed import images_per_second
    from budgetnet.model import build_model

    model = build_model(spec).to(device).eval()
    inputs = np.random.default_rng(0).standard_normal((batch, spec.in_channels, 32, 32)).astype(np.float32)

    def forward(x: np.ndarray) -> object:
        with torch.inference_mode():
            return model(torch.from_numpy(x).to(device))

    return 1000.0 * batch / images_per_second(forward, inputs, batch, min_seconds=LATENCY_SECONDS)
