"""The training recipe: one frozen dataclass, a table of named recipes, and its JSON form."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from budgetnet.errors import BudgetnetError

AUGMENT_MODES = ("offline", "online", "shift", "none")
BATCH_AUGMENT_MODES = ("online", "shift")  # drawn per batch; "offline" and "none" draw nothing
SCHEDULES = ("multistep", "cosine", "linear")
PRECISIONS = ("auto", "fp32", "bf16")
OPTIMIZERS = ("sgd", "muon")
PAPER_EPOCHS = 50  # the paper's final schedule length
PAPER_SAMPLES = 300_000  # 50k originals + 5 offline-augmented copies
DEFAULT_SHIFT = 2  # px, as airbench; budgetnet.data.augment.SHIFT
MAX_TTA_SHIFT = 4  # px; reflect padding needs less than the image's side


def tta_text(tta: bool, shift: int = 0) -> str:
    """How a test pass averaged its views, for people: "off", "flip (2 views)" or "flip + +-1 px (6 views)"."""
    if not tta:
        return "off"
    return f"flip + +-{shift} px (6 views)" if shift else "flip (2 views)"


class RecipeError(BudgetnetError):
    """A recipe value that cannot be trained with."""


def _flag(default: Any, help: str, least: int | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A recipe field that `budgetnet train` offers as a flag (see budgetnet.cli.recipe_flags)."""
    return field(default=default, metadata={"flag": True, "help": help, "least": least, "choices": choices})


def flag_fields() -> list[dataclasses.Field]:
    """The Recipe fields that are flags, in declaration order."""
    return [f for f in dataclasses.fields(Recipe) if f.metadata.get("flag")]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides what a training run computes (the device only decides how fast)."""

    # Each field's metadata holds its `budgetnet train` flag: the help text, the least value a flag
    # accepts (0 or 1; Recipe's own checks cover the rest) and the choices. `name` is chosen with --recipe.
    name: str = field(default="paper", metadata={"flag": False})  # the named recipe these values started from
    epochs: int = _flag(50, "passes over the training rows; a --epochs flag moves the recipe's milestones and "
                        "warm-up along proportionally", least=1)
    batch_size: int = _flag(32, "images per optimiser step", least=1)
    lr: float = _flag(0.1, "peak learning rate, per step, for the mean cross-entropy", least=0)
    momentum: float = _flag(0.9, "SGD momentum coefficient", least=0)
    weight_decay: float = _flag(1e-4, "L2 coefficient applied by SGD to every parameter", least=0)
    milestones: tuple[int, ...] = _flag((15, 25, 35, 45), "epochs (0-based starts) where lr is multiplied by "
                                        "--gamma, e.g. 15,25,35,45, or none")
    gamma: float = _flag(0.1, "lr multiplier at each milestone", least=0)
    schedule: str = _flag("multistep", "multistep: x gamma at each milestone; cosine or linear: to 0 after the "
                          "warm-up", choices=SCHEDULES)
    warmup_epochs: float = _flag(0.0, "epochs of linear lr warm-up from 0 (0: none)", least=0)
    nesterov: bool = _flag(False, "Nesterov momentum")
    optimizer: str = _flag("sgd", "sgd: momentum SGD for every parameter; muon: conv filters held at a fixed norm and "
                           "moved by orthogonalised momentum steps of --muon-lr (as airbench94_muon), the rest by "
                           "SGD", choices=OPTIMIZERS)
    muon_lr: float = _flag(0.1, "peak lr of --optimizer muon's filter steps: about the relative change of a conv's "
                           "filters per step; follows the schedule like --lr", least=0)
    freeze_bn_scale: bool = _flag(False, "keep every BatchNorm scale at its initial 1 (as ResNet-9 and airbench)")
    bn_bias_lr: float = _flag(1.0, "lr multiplier for BatchNorm biases, their weight decay per step kept as for "
                              "the other parameters (airbench: 64)", least=0)
    ghost_batch: int = _flag(0, "in training, BatchNorm normalises each run of N images of a batch on its own "
                             "(ghost BatchNorm; Page's ResNet-9: 32 of 512); 0 = the whole batch", least=0)
    ema_decay: float = _flag(0.0, "per-step decay of a weight EMA, 0 = off; with EMA the averaged weights are "
                             "evaluated, reported and exported", least=0)
    lookahead: int = _flag(0, "Lookahead: every N steps the weights move to a slow copy pulled towards them, "
                           "that copy keeping a share growing to 0.95**N by the end (airbench: 5); 0 = off", least=0)
    tta: bool = _flag(False, "report test (and val) accuracy with flip test-time augmentation")
    tta_shift: int = _flag(0, "with --tta, also average both views moved diagonally by +-N px, reflect-padded: 6 "
                           "views, the unshifted pair weighing half (0: flip only)", least=0)
    eval_every: int = _flag(1, "test (and val) pass after every N-th epoch and the last; the trained weights do "
                            "not depend on it", least=1)
    label_smoothing: float = _flag(0.0, "cross-entropy target smoothing, 0-1", least=0)
    augment: str = _flag("offline", "offline: the 6x store; online: flip+crop per batch; shift: alternating flips "
                         "and reflect-padded shifts of up to --shift px per batch; none", choices=AUGMENT_MODES)
    shift: int = _flag(DEFAULT_SHIFT, "largest translation in px of --augment shift, per axis", least=0)
    cutout: int = _flag(0, "side in px of a square set to the mean colour at a random place in every training "
                        "image, after --augment online or shift (0: off)", least=0)
    low_res_epochs: int = _flag(0, "the first N epochs train on images scaled down to --low-res-size px, which "
                                "costs fewer MACs per image (progressive resizing); 0 = off", least=0)
    low_res_size: int = _flag(24, "side in px of the training images of the --low-res-epochs", least=1)
    seed: int = _flag(0, "seeds init, epoch order and online augmentation (the offline store always uses seed 0)",
                      least=0)
    subset: int | None = _flag(None, "train on the first N original training images only (default: all)", least=1)
    val_split: int = _flag(0, "original training images held out, with their augmented copies, for validation",
                           least=0)
    precision: str = _flag("auto", "auto: bf16 autocast where the hardware runs it natively (CUDA, or a CPU with "
                           "amx_bf16/avx512_bf16), fp32 elsewhere, resolved when a run starts; or fp32, bf16",
                           choices=PRECISIONS)

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.eval_every >= 1, f"eval every must be at least 1 epoch, got {self.eval_every}"),
            (self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"weight decay must be non-negative, got {self.weight_decay}"),
            (all(m > 0 for m in self.milestones), f"milestones must be positive epochs, got {list(self.milestones)}"),
            (list(self.milestones) == sorted(set(self.milestones)), "milestones must be strictly increasing"),
            (self.gamma > 0, f"gamma must be positive, got {self.gamma}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (self.muon_lr > 0, f"muon lr must be positive, got {self.muon_lr}"),
            (self.bn_bias_lr > 0, f"bn bias lr must be positive, got {self.bn_bias_lr}"),
            (self.ghost_batch != 1, "a ghost batch must hold at least 2 images (0 = off), got 1"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (self.schedule == "multistep" or self.warmup_epochs < self.epochs,
             f"a {self.schedule} schedule needs fewer warm-up epochs ({self.warmup_epochs}) than epochs ({self.epochs})"),
            (0 <= self.ema_decay < 1, f"ema decay must be in [0, 1), got {self.ema_decay}"),
            (self.lookahead >= 0, f"lookahead must be 0 (off) or a number of steps, got {self.lookahead}"),
            (not self.nesterov or self.momentum > 0, "nesterov momentum needs a momentum above 0"),
            (self.warmup_epochs >= 0, f"warm-up epochs must be non-negative, got {self.warmup_epochs}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.augment in AUGMENT_MODES, f"augment must be one of {', '.join(AUGMENT_MODES)}, got {self.augment!r}"),
            (0 <= self.shift <= 16, f"shift must be 0-16 px, got {self.shift}"),
            (self.shift == DEFAULT_SHIFT or self.augment == "shift",
             f"a shift of {self.shift} px needs --augment shift, got {self.augment!r}"),
            (0 <= self.cutout <= 32, f"cutout must be 0-32 px, got {self.cutout}"),
            (0 <= self.tta_shift <= MAX_TTA_SHIFT, f"tta shift must be 0-{MAX_TTA_SHIFT} px, got {self.tta_shift}"),
            (self.tta_shift == 0 or self.tta, "a tta shift needs --tta"),
            (self.cutout == 0 or self.augment in BATCH_AUGMENT_MODES,
             f"cutout needs --augment online or shift, got {self.augment!r}"),
            (self.low_res_epochs < self.epochs,
             f"low-res epochs ({self.low_res_epochs}) must leave the last epoch at full size ({self.epochs} epochs)"),
            (2 <= self.low_res_size <= 32, f"low-res size must be 2-32 px, got {self.low_res_size}"),
            (self.subset is None or self.subset >= 1, f"subset must be at least 1, got {self.subset}"),
            (self.val_split >= 0, f"val split must be non-negative, got {self.val_split}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise RecipeError(message)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with `changes` applied and validated; None values are ignored. Turning TTA off also turns
        off its shifted views unless `tta_shift` is given too (so `--recipe cpu --no-tta` is one view)."""
        given = {k: v for k, v in changes.items() if v is not None}
        if given.get("tta") is False and "tta_shift" not in given:
            given["tta_shift"] = 0
        return dataclasses.replace(self, **given)

    def tests_after(self, epoch: int) -> bool:
        """Whether 1-based `epoch` ends with a test (and validation) pass: every `eval_every`-th and the last."""
        return epoch % self.eval_every == 0 or epoch == self.epochs

    def with_epochs(self, epochs: int) -> Recipe:
        """This recipe over `epochs`, its schedule compressed or stretched along: milestones, warm-up and
        low-res epochs move proportionally (the paper's 15/50 of the way stays 15/50 of the way)."""
        if epochs == self.epochs:
            return self
        low_res = min(round(self.low_res_epochs * epochs / self.epochs), epochs - 1)
        return self.replace(epochs=epochs, milestones=scale_milestones(self.milestones, epochs, self.epochs),
                            warmup_epochs=self.warmup_epochs * epochs / self.epochs, low_res_epochs=low_res)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that `from_dict` turns back into an equal recipe."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    def to_json(self) -> str:
        """The recipe as indented JSON."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Rebuild a recipe from `to_dict` output, refusing unknown fields."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"unknown recipe field(s) {', '.join(unknown)}")
        return cls(**data)

    def scaled_down_reasons(self, samples_per_epoch: int) -> list[str]:
        """Why a run of this recipe over `samples_per_epoch` rows is smaller than the paper's (empty if it is not)."""
        reasons = []
        if self.epochs < PAPER_EPOCHS:
            reasons.append(f"{self.epochs} epochs instead of {PAPER_EPOCHS}")
        if self.subset is not None:
            reasons.append(f"a subset of the first {self.subset:,} training images")
        if samples_per_epoch < PAPER_SAMPLES:
            reasons.append(f"{samples_per_epoch:,} training samples per epoch instead of {PAPER_SAMPLES:,}")
        return reasons


def scale_milestones(milestones: tuple[int, ...], epochs: int, reference_epochs: int = PAPER_EPOCHS) -> tuple[int, ...]:
    """Milestones moved proportionally from a `reference_epochs` schedule to an `epochs` one."""
    scaled = (round(m * epochs / reference_epochs) for m in milestones)
    return tuple(sorted({m for m in scaled if 0 < m < epochs}))


# Beyond the paper, for a converged model on a 2-core CPU (docs/results.md), with the resnet-cpu
# network: the time-to-accuracy ideas of David Page's ResNet-9 and Keller Jordan's airbench (large
# batches, a short linear warm-up and linear decay, Nesterov, label smoothing 0.2, alternating flips
# with small shifts) plus a weight EMA, airbench's Lookahead, Page's ghost BatchNorm and flip+shift
# TTA. Chosen on a held-out split, never on the test set.
CPU_RECIPE = Recipe(
    name="cpu",
    epochs=18,  # 16 epochs gave 93.76% in 80 min on AMX and still climbed; 18, tested every 3rd, fit 90 min
    batch_size=512,
    lr=0.4,  # per step, for the mean loss over 512 images
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    milestones=(),
    schedule="linear",
    warmup_epochs=2.0,
    label_smoothing=0.2,
    ghost_batch=32,  # +0.34 points (flip TTA) on a held-out split over whole-batch BatchNorm (docs/results.md)
    ema_decay=0.99,  # per step: about one epoch of ~98 steps
    lookahead=5,  # +0.62 points (flip TTA) on a held-out split over no Lookahead (docs/results.md)
    tta=True,
    tta_shift=1,  # 6 views: +0.20 points on a held-out split over flip alone (docs/results.md)
    eval_every=6,  # a 6-view test pass costs about a third of an epoch
    augment="shift",
)


RECIPES: dict[str, Recipe] = {
    # section 2.2: SGD(0.9, wd 1e-4), lr 0.1 x0.1 at 15/25/35/45, 50 epochs, batch 32, 300k offline store
    "paper": Recipe(),
    # Beyond the paper, for time-to-accuracy on one GPU (docs/speed.md): large batches with a linearly
    # scaled, warmed-up lr and a cosine decay, Nesterov, label smoothing, weight EMA and flip TTA, bf16,
    # online flip+crop (fresh each epoch: at 16x fewer steps per epoch the fixed store repeats too much).
    "fast": Recipe(
        name="fast",
        epochs=40,
        batch_size=512,
        lr=0.4,  # the usual CIFAR ResNet 0.1 per 128 images, scaled linearly to 512
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        milestones=(),
        schedule="cosine",
        warmup_epochs=2.0,
        label_smoothing=0.1,
        ema_decay=0.999,
        tta=True,
        augment="online",
    ),
    "cpu": CPU_RECIPE,
    # The same with the resnet-cpu-small network, for CPUs without native bf16, where resnet-cpu trains in fp32
    # for hours: 3x the weight decay, Muon on the conv filters, and 14 epochs of which the first 7 train at 24 px,
    # costing about what 10.7 epochs at 32 px do; chosen on a held-out split (docs/results.md).
    "cpu-small": CPU_RECIPE.with_epochs(14).replace(
        name="cpu-small",
        weight_decay=1.5e-3,  # 3x: +0.60 points (flip TTA) on a held-out split; 5x: +0.10 (docs/results.md)
        optimizer="muon",  # with lr 0.05 and one more epoch at 24 px: +0.52 points held out (docs/results.md)
        muon_lr=0.05,
        low_res_epochs=7,  # at 24 px an epoch trains about 1.9x as fast
        low_res_size=24,
        eval_every=7,  # two test passes
        tta_shift=0,  # the mirror pair alone: a 6-view pass costs 3x as much, and it is not the reported figure
    ),
}

# the preset each named recipe was made for, trained when no --arch is given
RECIPE_ARCHS = {"paper": "approach-2a", "fast": "approach-2a", "cpu": "resnet-cpu", "cpu-small": "resnet-cpu-small"}


def get_recipe(name: str) -> Recipe:
    """The named recipe, or a RecipeError listing the known names."""
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None
