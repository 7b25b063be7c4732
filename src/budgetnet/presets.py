"""The named architectures, in one table, and the one place that turns a name or JSON file into a spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from budgetnet.errors import SpecError
from budgetnet.spec import ResNetSpec, StageSpec


def _stages(blocks: list[int], widths: list[int]) -> tuple[StageSpec, ...]:
    # CIFAR ResNets keep full resolution in the first stage and halve it in each later one
    return tuple(StageSpec(b, w, 1 if i == 0 else 2) for i, (b, w) in enumerate(zip(blocks, widths)))


def _whitened_pooling(widths: list[tuple[int, int]]) -> ResNetSpec:
    # the cpu networks: airbench's frozen 2x2 whitening stem, then (blocks, width) stages that each pool by 2
    return ResNetSpec(tuple(StageSpec(b, w, 2, "pool") for b, w in widths), stem="whiten", stem_width=24, stem_kernel=2)


@dataclass(frozen=True)
class Preset:
    """A named spec, with the paper's result and the reading of the paper behind it."""

    name: str
    spec: ResNetSpec
    paper_accuracy: float | None  # Table 1 test accuracy in percent, None if not in the paper
    note: str  # what the paper says and what we chose where it is ambiguous


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "resnet18",
            ResNetSpec(_stages([2, 2, 2, 2], [64, 128, 256, 512])),
            None,
            "The paper's template (section 3, Figure 7): 4 stages of 2 blocks, 64-512 channels, "
            "3x3 convs, 1x1 skips. 11,173,962 parameters, over the budget.",
        ),
        Preset(
            "approach-1",
            ResNetSpec(_stages([1, 2, 3, 1], [64, 128, 256, 512]), conv1_kernel=1),
            94.24,
            "Approach I: blocks 1-2-3-1, and the first conv of every block reduced from 3x3 to 1x1; "
            "everything else as the template.",
        ),
        Preset(
            "approach-2a",
            ResNetSpec(_stages([3, 5, 3], [64, 128, 256])),
            95.67,
            "Approach II(a), the paper's best: the 512-channel stage removed, blocks 3-5-3; "
            "everything else as the template.",
        ),
        Preset(
            "approach-2b",
            ResNetSpec(_stages([2, 2, 2], [64, 128, 256]), conv1_kernel=5),
            95.17,
            "Approach II(b): the 512-channel stage removed, the template's 2 blocks per stage kept "
            "(the text changes only the kernel), first conv of every block 5x5.",
        ),
        Preset(
            "approach-3a",
            ResNetSpec(_stages([3, 3, 5, 3], [32, 64, 128, 256]), stem_width=32),
            95.10,
            "Approach III(a): all channels halved (32-256), blocks 3-3-5-3. Choice: the stem is "
            "halved too (64 to 32), since the text halves 'the number of channels of the original model'.",
        ),
        Preset(
            "approach-3b",
            ResNetSpec(_stages([2, 2, 2, 2], [32, 64, 128, 256]), stem_width=32, conv1_kernel=5),
            93.82,
            "Approach III(b): channels halved as in III(a), stem included; the template's 2 blocks "
            "per stage kept; first conv of every block 5x5, as in II(b).",
        ),
        Preset(
            "approach-4",
            ResNetSpec(
                _stages([2, 3, 4, 2], [16, 32, 64, 128]),
                stem_width=16,
                stem_kernel=7,
                conv1_kernel=7,
                conv2_kernel=7,
                skip_kernel=5,
            ),
            92.42,
            "Approach IV: channels quartered (16-128), blocks 2-3-4-2, skips 5x5. Choice: the text "
            "raises 'the kernel of each convolutional layer' to 7x7, so the stem conv is 7x7 too "
            "(still stride 1, no max-pool); a 3x3 stem would give 4,914,842 instead of 4,916,762.",
        ),
        Preset(
            "resnet-cpu",
            _whitened_pooling([(2, 128), (1, 256), (2, 320)]),
            None,
            "Not from the paper: the network of the cpu recipe, after David Page's ResNet-9 (residual blocks "
            "in the first and last stages, conv-then-max-pool downsampling) with airbench's frozen 2x2 "
            "patch-whitening stem, narrowed to fit the budget (320 instead of 512 channels last).",
        ),
        Preset(
            "resnet-cpu-small",
            _whitened_pooling([(1, 64), (1, 256), (1, 256)]),
            None,
            "Not from the paper: airbench94's widths (64-256-256) as one residual block per stage, with the "
            "same stem and pooling as resnet-cpu; 2.4x fewer MACs, for CPUs without native bf16.",
        ),
    ]
}

PAPER_APPROACHES = tuple(name for name in PRESETS if name.startswith("approach-"))


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a SpecError listing the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise SpecError(f"unknown architecture {name!r}; known: {', '.join(PRESETS)}") from None


def resolve_spec(name_or_path: str | ResNetSpec) -> tuple[str, ResNetSpec]:
    """Turn a preset name or a path to a `.json` spec into (display name, spec)."""
    if isinstance(name_or_path, ResNetSpec):
        return "custom", name_or_path
    if name_or_path in PRESETS:
        return name_or_path, PRESETS[name_or_path].spec
    path = Path(name_or_path)
    if name_or_path.endswith(".json") or path.is_file():
        if not path.is_file():
            raise SpecError(f"spec file {name_or_path} does not exist")
        return path.stem, ResNetSpec.load(path)
    return name_or_path, get_preset(name_or_path).spec
