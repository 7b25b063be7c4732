"""The searched design space: draw a network's shape, then scale its widths to fill the budget.

Every drawn spec is a `ResNetSpec`, so it is counted, built, trained and exported like a preset.
Widths are drawn as ratios between stages and scaled up together until the parameter budget (and a
MAC limit, if given) is as full as multiples of 8 channels allow; the counts are analytic, so a
spec that cannot fit is rejected before anything is built.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from budgetnet.counts import count_macs, count_params
from budgetnet.errors import BudgetnetError
from budgetnet.spec import ResNetSpec, StageSpec

SPACE_VERSION = 1  # bump when the choices below change: a study's trials then mean something else
STAGE_COUNTS = (2, 3, 4)
MAX_BLOCKS = 4  # BasicBlocks per stage: 1..MAX_BLOCKS
GROWTHS = (1.5, 2.0)  # width ratio between one stage and the next
STEMS = ("conv3", "conv5", "whiten2")  # trained 3x3 or 5x5 conv, or a frozen 2x2 patch-whitening conv
CONV1_KERNELS = (1, 3, 5)
CONV2_KERNELS = (3, 5)
SKIP_KERNELS = (1, 3)
DOWNSAMPLES = ("stride", "pool")
CHANNEL_STEP = 8  # widths are multiples of 8 channels, which vectorised kernels run fastest
MAX_WIDTH = 4096


class Sampler(Protocol):
    """What drawing a shape needs from an Optuna trial (`optuna.Trial` has these methods)."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


class SpecRejected(BudgetnetError):
    """A drawn shape that no width makes fit the limits; it is discarded without training."""


@dataclass(frozen=True)
class Limits:
    """What every searched spec must satisfy, from its analytic counts."""

    budget: int  # parameters, as counted for the presets
    max_macs: int | None = None  # multiply-accumulates for one 32x32 image
    num_classes: int = 10
    in_channels: int = 3

    def fits(self, spec: ResNetSpec) -> bool:
        """True when `spec` is within the parameter budget and the MAC limit."""
        if count_params(spec) > self.budget:
            return False
        return self.max_macs is None or count_macs(spec) <= self.max_macs


@dataclass(frozen=True)
class Shape:
    """A network without its width scale: what the sampler draws."""

    blocks: tuple[int, ...]  # BasicBlocks per stage
    growth: float  # width of stage i+1 / width of stage i
    stem: str  # one of STEMS
    conv1_kernel: int
    conv2_kernel: int
    skip_kernel: int
    downsample: str  # "stride" or "pool", for every downsampling stage

    def spec(self, base: float, limits: Limits) -> ResNetSpec:
        """The spec whose first stage has about `base` channels."""
        widths = [_round_width(base * self.growth**i) for i in range(len(self.blocks))]
        stages = tuple(StageSpec(b, w, 1 if i == 0 else 2, self.downsample if i else "stride")
                       for i, (b, w) in enumerate(zip(self.blocks, widths)))
        if self.stem == "whiten2":
            stem = {"stem": "whiten", "stem_kernel": 2, "stem_width": 2 * limits.in_channels * 4}
        else:
            stem = {"stem": "conv", "stem_kernel": int(self.stem[-1]), "stem_width": widths[0]}
        return ResNetSpec(stages, conv1_kernel=self.conv1_kernel, conv2_kernel=self.conv2_kernel,
                          skip_kernel=self.skip_kernel, num_classes=limits.num_classes,
                          in_channels=limits.in_channels, **stem)


def _round_width(width: float) -> int:
    return max(CHANNEL_STEP, min(MAX_WIDTH, CHANNEL_STEP * round(width / CHANNEL_STEP)))


def draw_shape(trial: Sampler) -> Shape:
    """Draw a shape; the parameter names are the study's search space."""
    stages = trial.suggest_int("stages", STAGE_COUNTS[0], STAGE_COUNTS[-1])
    blocks = tuple(trial.suggest_int(f"blocks_{i}", 1, MAX_BLOCKS) for i in range(stages))
    return Shape(blocks, trial.suggest_categorical("growth", GROWTHS), trial.suggest_categorical("stem", STEMS),
                 trial.suggest_categorical("conv1_kernel", CONV1_KERNELS),
                 trial.suggest_categorical("conv2_kernel", CONV2_KERNELS),
                 trial.suggest_categorical("skip_kernel", SKIP_KERNELS),
                 trial.suggest_categorical("downsample", DOWNSAMPLES))


def fill(shape: Shape, limits: Limits) -> ResNetSpec:
    """The widest spec of `shape` within `limits`: widths scaled together, then rounded to multiples of 8."""
    smallest = shape.spec(CHANNEL_STEP, limits)
    if not limits.fits(smallest):
        raise SpecRejected(f"even at {CHANNEL_STEP} channels this shape has {count_params(smallest):,} params "
                           f"and {count_macs(smallest):,} MACs, over the limits")
    return _widest(lambda base: shape.spec(base, limits), CHANNEL_STEP, MAX_WIDTH, limits)


def scale_to_fit(spec: ResNetSpec, limits: Limits) -> ResNetSpec:
    """`spec` with every width (stem included, unless it whitens) multiplied by one factor, as large as fits.

    This is how a hand-made preset is compared at another budget: same shape, widths scaled.
    """
    def scaled(factor: float) -> ResNetSpec:
        stages = tuple(dataclasses.replace(s, width=_round_width(s.width * factor)) for s in spec.stages)
        stem_width = spec.stem_width if spec.stem == "whiten" else _round_width(spec.stem_width * factor)
        return dataclasses.replace(spec, stages=stages, stem_width=stem_width, num_classes=limits.num_classes,
                                   in_channels=limits.in_channels)

    low = CHANNEL_STEP / max(s.width for s in spec.stages)  # every stage at the 8-channel floor
    if not limits.fits(scaled(low)):
        raise SpecRejected(f"it does not fit the limits even at {CHANNEL_STEP} channels per stage")
    return _widest(scaled, low, MAX_WIDTH / max(s.width for s in spec.stages), limits)


def _widest(spec_at: Callable[[float], ResNetSpec], low: float, high: float, limits: Limits) -> ResNetSpec:
    """spec_at(x) for the largest x in [low, high] that fits `limits`, given that spec_at(low) fits.

    Counts only grow with x, so bisection finds it; 40 halvings leave far less than one channel.
    """
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if limits.fits(spec_at(mid)) else (low, mid)
    return spec_at(low)


def smallest_params(limits: Limits) -> int:
    """Parameters of the smallest spec in the space: a budget below this can find nothing."""
    sizes = []
    for stem, k1, k2, skip, down in itertools.product(STEMS, CONV1_KERNELS, CONV2_KERNELS, SKIP_KERNELS, DOWNSAMPLES):
        shape = Shape((1,) * STAGE_COUNTS[0], min(GROWTHS), stem, k1, k2, skip, down)
        sizes.append(count_params(shape.spec(CHANNEL_STEP, limits)))
    return min(sizes)


def describe(spec: ResNetSpec) -> str:
    """One short line: blocks, widths, kernels, skip, downsampling and stem."""
    stem = f"whiten{spec.stem_kernel}" if spec.stem == "whiten" else f"conv{spec.stem_kernel}"
    down = spec.stages[-1].downsample if len(spec.stages) > 1 else "stride"
    return (f"{'-'.join(map(str, spec.depths))} x {'-'.join(map(str, spec.widths))}, "
            f"k {spec.conv1_kernel}/{spec.conv2_kernel} skip {spec.skip_kernel}, {down}, {stem}")
