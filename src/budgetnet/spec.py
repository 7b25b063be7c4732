"""The ResNet design space: a frozen, validated, JSON-serialisable architecture spec."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgetnet.errors import SpecError

SPEC_FORMAT = 1  # bump when the JSON layout changes incompatibly
STEMS = ("conv", "whiten")
DOWNSAMPLES = ("stride", "pool")
ACTIVATIONS = ("relu", "gelu")
HEAD_POOLS = ("avg", "max")


def _require_int(field: str, value: Any) -> None:
    # bool is an int subclass; True as a width is always a mistake
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{field} must be an integer, got {value!r}")


def _require_positive(field: str, value: Any) -> None:
    _require_int(field, value)
    if value <= 0:
        raise SpecError(f"{field} must be positive, got {value!r}")


def _require_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"{field} must be one of {', '.join(choices)}, got {value!r}")


def _require_odd_kernel(field: str, value: Any) -> None:
    _require_positive(field, value)
    if value % 2 == 0:
        # odd kernels keep 'same' padding symmetric, so shapes depend on stride alone
        raise SpecError(f"{field} must be odd, got {value!r}")


@dataclass(frozen=True)
class StageSpec:
    """One residual stage: `blocks` BasicBlocks of `width` channels, the first with `stride`."""

    blocks: int  # number of BasicBlocks in the stage
    width: int  # output channels of every conv in the stage
    stride: int = 1  # spatial stride of the stage's first block (2 halves the resolution)
    # how the first block shrinks the map by `stride`: "stride", strided conv1 and shortcut (the paper's
    # ResNet18); "pool", conv1 at full resolution then max-pooled, shortcut average-pooled then projected
    downsample: str = "stride"

    def __post_init__(self) -> None:
        _require_positive("blocks", self.blocks)
        _require_positive("width", self.width)
        _require_positive("stride", self.stride)
        _require_choice("downsample", self.downsample, DOWNSAMPLES)


@dataclass(frozen=True)
class ResNetSpec:
    """A CIFAR-style ResNet: stem conv, residual stages of BasicBlocks, global pool, linear head."""

    stages: tuple[StageSpec, ...]  # residual stages, in order
    stem_width: int = 64  # channels of the stem conv
    stem_kernel: int = 3  # kernel size of the stem conv (stride 1, no max-pool)
    # "conv": a trained conv with 'same' padding; "whiten": a frozen, unpadded conv whose filters whiten
    # stem_kernel x stem_kernel patches of the training images (set from their statistics before training);
    # it needs stem_width = 2 * in_channels * stem_kernel**2, each eigenvector and its negative
    stem: str = "conv"
    conv1_kernel: int = 3  # kernel size of the first conv in every block
    conv2_kernel: int = 3  # kernel size of the second conv in every block
    skip_kernel: int = 1  # kernel size of projection shortcuts
    num_classes: int = 10  # outputs of the linear head
    in_channels: int = 3  # input image channels
    activation: str = "relu"  # after the stem and inside every block: "relu", or "gelu" (as airbench)
    head_pool: str = "avg"  # global pool before the head: "avg" (the paper's ResNet18), or "max" (as ResNet-9)
    logit_scale: float = 1.0  # the head's outputs are multiplied by it (ResNet-9: 0.125, airbench: 1/9)

    def __post_init__(self) -> None:
        stages = self.stages
        if isinstance(stages, (list, tuple)) and all(isinstance(s, dict) for s in stages):
            stages = tuple(_stage_from_dict(i, s) for i, s in enumerate(stages))
        if not isinstance(stages, (list, tuple)) or not all(isinstance(s, StageSpec) for s in stages):
            raise SpecError(f"stages must be a list of stages, got {self.stages!r}")
        if len(stages) == 0:
            raise SpecError("stages must hold at least one stage, got 0")
        object.__setattr__(self, "stages", tuple(stages))
        _require_positive("stem_width", self.stem_width)
        _require_positive("in_channels", self.in_channels)
        _require_choice("stem", self.stem, STEMS)
        if self.stem == "whiten":
            _require_positive("stem_kernel", self.stem_kernel)  # unpadded, so an even patch size is fine
            patch = self.in_channels * self.stem_kernel**2
            if self.stem_width != 2 * patch:
                raise SpecError(f"a whiten stem of kernel {self.stem_kernel} on {self.in_channels} channels needs "
                                f"stem_width {2 * patch} (each of the {patch} patch eigenvectors and its negative), "
                                f"got {self.stem_width}")
        else:
            _require_odd_kernel("stem_kernel", self.stem_kernel)
        _require_odd_kernel("conv1_kernel", self.conv1_kernel)
        _require_odd_kernel("conv2_kernel", self.conv2_kernel)
        _require_odd_kernel("skip_kernel", self.skip_kernel)
        _require_positive("num_classes", self.num_classes)
        _require_choice("activation", self.activation, ACTIVATIONS)
        _require_choice("head_pool", self.head_pool, HEAD_POOLS)
        if isinstance(self.logit_scale, bool) or not isinstance(self.logit_scale, (int, float)):
            raise SpecError(f"logit_scale must be a number, got {self.logit_scale!r}")
        if not 0 < self.logit_scale < float("inf"):
            raise SpecError(f"logit_scale must be positive and finite, got {self.logit_scale!r}")
        object.__setattr__(self, "logit_scale", float(self.logit_scale))

    @property
    def depths(self) -> tuple[int, ...]:
        """Blocks per stage."""
        return tuple(s.blocks for s in self.stages)

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels per stage."""
        return tuple(s.width for s in self.stages)

    @property
    def strides(self) -> tuple[int, ...]:
        """Stride of each stage's first block."""
        return tuple(s.stride for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that `from_dict` turns back into an equal spec."""
        d = dataclasses.asdict(self)
        d["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return {"format": SPEC_FORMAT, **d}

    def to_json(self, indent: int | None = 2) -> str:
        """The spec as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> ResNetSpec:
        """Build a spec from a dict, rejecting unknown, missing and badly typed fields."""
        if not isinstance(data, dict):
            raise SpecError(f"a spec must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        fmt = data.pop("format", SPEC_FORMAT)
        if fmt != SPEC_FORMAT:
            raise SpecError(f"spec format {fmt!r} is not supported (this budgetnet reads format {SPEC_FORMAT})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown spec field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "stages" not in data:
            raise SpecError("spec is missing the field 'stages'")
        if not isinstance(data["stages"], list):
            raise SpecError(f"stages must be a list of stages, got {data['stages']!r}")
        data["stages"] = tuple(_stage_from_dict(i, s) for i, s in enumerate(data["stages"]))
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ResNetSpec:
        """Parse a spec from a JSON string."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"spec is not valid JSON: {e}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> ResNetSpec:
        """Read a spec from a `.json` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpecError(f"cannot read spec file {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise SpecError(f"cannot read spec file {path}: not UTF-8 text") from None
        try:
            return cls.from_json(text)
        except SpecError as e:
            raise SpecError(f"{path}: {e}") from None

    def save(self, path: str | Path) -> None:
        """Write the spec to a `.json` file."""
        Path(path).write_text(self.to_json() + "\n")


def _stage_from_dict(index: int, data: Any) -> StageSpec:
    if not isinstance(data, dict):
        raise SpecError(f"stages[{index}] must be an object with blocks, width and stride, got {data!r}")
    known = [f.name for f in dataclasses.fields(StageSpec)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SpecError(f"stages[{index}] has unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}")
    missing = sorted({"blocks", "width"} - set(data))
    if missing:
        raise SpecError(f"stages[{index}] is missing {', '.join(missing)}")
    try:
        return StageSpec(**data)
    except SpecError as e:
        raise SpecError(f"stages[{index}].{e}") from None
