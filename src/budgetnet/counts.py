"""Parameter and MAC counts computed from a spec alone, without building the model.

Parameters count every parameter tensor: conv weights (convs have no bias), BatchNorm
weight and bias, and the linear head's weight and bias. A whitening stem's filters are frozen
(set from the data, not trained) and still counted, so the budget bounds the model's size. MACs (multiply-accumulates)
count convs and the linear layer only, for one image of `input_size` x `input_size`;
BatchNorm, ReLU, the residual additions and pooling are not counted, as is usual.
Layer names equal the built model's module names, so tests can compare layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from budgetnet.errors import BudgetError, SpecError
from budgetnet.spec import ResNetSpec

DEFAULT_BUDGET = 5_000_000  # trainable parameters, the paper's limit
CIFAR_SIZE = 32  # CIFAR-10 images are 32x32


@dataclass(frozen=True)
class LayerCount:
    """One counted layer of the built model."""

    name: str  # the module's name in the built model
    kind: str  # "conv", "bn" or "linear"
    stage: int | None  # index of the residual stage, None for stem and head
    params: int
    macs: int
    out_shape: tuple[int, ...]  # (channels, height, width) or (features,)


def _out_size(size: int, stride: int) -> int:
    # 'same' padding (k // 2) with an odd kernel: only the stride changes the size
    return (size - 1) // stride + 1


def _pooled(size: int, stride: int, where: str) -> int:
    # max- and average-pooling by `stride` with a window of `stride` drop a ragged last row and column
    if size // stride < 1:
        raise SpecError(f"{where} pools a {size}x{size} map by {stride}, which leaves nothing")
    return size // stride


def _conv(name: str, stage: int | None, cin: int, cout: int, k: int, stride: int, size: int,
          padded: bool = True) -> LayerCount:
    out = _out_size(size, stride) if padded else size - k + 1
    return LayerCount(name, "conv", stage, cin * cout * k * k, cin * cout * k * k * out * out, (cout, out, out))


def _bn(name: str, stage: int | None, c: int, size: int) -> LayerCount:
    return LayerCount(name, "bn", stage, 2 * c, 0, (c, size, size))


def layer_counts(spec: ResNetSpec, input_size: int = CIFAR_SIZE) -> list[LayerCount]:
    """Every parameterised layer of `build_model(spec)`, in forward order, with its counts."""
    whiten = spec.stem == "whiten"
    if whiten and input_size < spec.stem_kernel:
        raise SpecError(f"a {spec.stem_kernel}x{spec.stem_kernel} whiten stem needs images of at least that size")
    stem = _conv("stem.conv", None, spec.in_channels, spec.stem_width, spec.stem_kernel, 1, input_size,
                 padded=not whiten)
    size = stem.out_shape[1]
    layers = [stem, _bn("stem.bn", None, spec.stem_width, size)]
    cin = spec.stem_width
    for s, stage in enumerate(spec.stages):
        pool = stage.downsample == "pool"
        for b in range(stage.blocks):
            stride = stage.stride if b == 0 else 1
            prefix = f"stages.{s}.{b}"
            out = _pooled(size, stride, prefix) if pool else _out_size(size, stride)
            # a pooling block convolves at full resolution, then pools
            conv1 = _conv(f"{prefix}.conv1", s, cin, stage.width, spec.conv1_kernel, 1 if pool else stride, size)
            layers += [
                conv1,
                _bn(f"{prefix}.bn1", s, stage.width, out),
                _conv(f"{prefix}.conv2", s, stage.width, stage.width, spec.conv2_kernel, 1, out),
                _bn(f"{prefix}.bn2", s, stage.width, out),
            ]
            if stride != 1 or cin != stage.width:
                # a pooling block's shortcut pools first, then projects at the output size
                layers += [
                    _conv(f"{prefix}.shortcut.conv", s, cin, stage.width, spec.skip_kernel, 1 if pool else stride,
                          out if pool else size),
                    _bn(f"{prefix}.shortcut.bn", s, stage.width, out),
                ]
            cin, size = stage.width, out
    fc = cin * spec.num_classes
    layers.append(LayerCount("head", "linear", None, fc + spec.num_classes, fc, (spec.num_classes,)))
    return layers


def count_params(spec: ResNetSpec) -> int:
    """Trainable parameters of `build_model(spec)`."""
    return sum(layer.params for layer in layer_counts(spec))


def count_macs(spec: ResNetSpec, input_size: int = CIFAR_SIZE) -> int:
    """Multiply-accumulates of convs and the linear head for one `input_size`² image."""
    return sum(layer.macs for layer in layer_counts(spec, input_size))


def check_budget(spec: ResNetSpec, budget: int = DEFAULT_BUDGET, name: str = "this spec") -> int:
    """Return the spec's parameter count, or raise BudgetError if it exceeds `budget`."""
    params = count_params(spec)
    if params > budget:
        raise BudgetError(
            f"{name} has {params:,} trainable parameters, over the budget of {budget:,}; "
            f"pass --budget {params} (or more) to allow it"
        )
    return params
