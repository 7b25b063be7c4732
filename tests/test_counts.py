import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from budgetnet.counts import DEFAULT_BUDGET, check_budget, count_macs, count_params, layer_counts
from budgetnet.errors import BudgetError, SpecError
from budgetnet.model import build_model
from budgetnet.presets import PAPER_APPROACHES, PRESETS
from budgetnet.spec import DOWNSAMPLES, STEMS, ResNetSpec, StageSpec


def measured_macs(model: nn.Module, size: int = 32) -> dict[str, int]:
    """MACs per conv/linear layer, counted by forward hooks on one image."""
    macs: dict[str, int] = {}

    def hook(name):
        def record(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                macs[name] = output[0].numel() * module.in_channels // module.groups * k
            else:
                macs[name] = module.in_features * module.out_features

        return record

    handles = [
        m.register_forward_hook(hook(name))
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, model.spec.in_channels, size, size))
    for h in handles:
        h.remove()
    return macs


def measured_params(model: nn.Module) -> dict[str, int]:
    return {
        name: sum(p.numel() for p in m.parameters(recurse=False))
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))
    }


def assert_counts_match(spec: ResNetSpec) -> None:
    model = build_model(spec)
    assert count_params(spec) == sum(p.numel() for p in model.parameters()) == model.num_params()
    layers = layer_counts(spec)
    params = measured_params(model)
    assert {l.name for l in layers} == set(params)
    assert {l.name: l.params for l in layers} == params
    macs = measured_macs(model)
    assert {l.name: l.macs for l in layers if l.kind != "bn"} == macs
    assert count_macs(spec) == sum(macs.values())


def test_resnet18_has_the_well_known_count():
    assert count_params(PRESETS["resnet18"].spec) == 11_173_962


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_counts_equal_the_built_model(name):
    assert_counts_match(PRESETS[name].spec)


@pytest.mark.parametrize("name", PAPER_APPROACHES)
def test_approaches_are_about_4_9_million(name):
    assert 4_800_000 < count_params(PRESETS[name].spec) < DEFAULT_BUDGET


def test_paper_preset_exact_counts():
    expected = {
        "approach-1": 4_971_338,
        "approach-2a": 4_918_602,
        "approach-2b": 4_874_826,
        "approach-3a": 4_957_098,
        "approach-3b": 4_894_762,
        "approach-4": 4_916_762,
    }
    assert {name: count_params(PRESETS[name].spec) for name in expected} == expected


kernels = st.sampled_from([1, 3, 5])


@st.composite
def specs(draw):
    """Any small spec: conv or whitening stem, strided or pooling stages."""
    in_channels = draw(st.integers(1, 4))
    stem = draw(st.sampled_from(STEMS))
    stem_kernel = draw(st.integers(1, 3) if stem == "whiten" else kernels)
    stem_width = 2 * in_channels * stem_kernel**2 if stem == "whiten" else draw(st.integers(1, 12))
    stage = st.builds(StageSpec, blocks=st.integers(1, 2), width=st.integers(1, 12), stride=st.integers(1, 3),
                      downsample=st.sampled_from(DOWNSAMPLES))
    return ResNetSpec(
        stages=tuple(draw(st.lists(stage, min_size=1, max_size=3))),
        stem=stem,
        stem_width=stem_width,
        stem_kernel=stem_kernel,
        conv1_kernel=draw(kernels),
        conv2_kernel=draw(kernels),
        skip_kernel=draw(kernels),
        num_classes=draw(st.integers(1, 12)),
        in_channels=in_channels,
    )


@settings(max_examples=60, deadline=None)
@given(specs())
def test_random_spec_counts_equal_the_built_model(spec):
    assert_counts_match(spec)


def test_resnet_cpu_counts_by_hand():
    spec = PRESETS["resnet-cpu"].spec
    layers = {layer.name: layer for layer in layer_counts(spec)}
    # the unpadded 2x2 whitening stem maps 32x32 to 31x31; pooling halves 31 -> 15 -> 7 -> 3
    assert layers["stem.conv"].out_shape == (24, 31, 31) and layers["stem.conv"].params == 24 * 3 * 2 * 2
    assert layers["stages.0.0.conv1"].macs == 24 * 128 * 9 * 31 * 31  # convolves before it pools
    assert layers["stages.0.0.bn1"].out_shape == (128, 15, 15)
    assert layers["stages.0.0.shortcut.conv"].macs == 24 * 128 * 15 * 15  # pools before it projects
    assert "stages.0.1.shortcut.conv" not in layers  # same shape: an identity shortcut
    assert layers["stages.2.1.conv2"].out_shape == (320, 3, 3)
    assert count_params(spec) == 4_984_154 <= DEFAULT_BUDGET


def test_resnet_cpu_small_counts_by_hand():
    spec = PRESETS["resnet-cpu-small"].spec
    layers = {layer.name: layer for layer in layer_counts(spec)}
    assert layers["stages.0.0.conv1"].macs == 24 * 64 * 9 * 31 * 31  # the 31x31 stem output, convolved before the pool
    assert layers["stages.1.0.conv2"].params == 256 * 256 * 9 and layers["stages.1.0.conv2"].out_shape == (256, 7, 7)
    assert layers["stages.2.0.shortcut.conv"].params == 256 * 256  # a 1x1 projection: the map halves
    assert layers["head"].params == 256 * 10 + 10
    assert count_params(spec) == 2_057_434 and count_macs(spec) == 119_885_600


def test_a_pooling_stage_that_leaves_nothing_is_refused():
    spec = ResNetSpec((StageSpec(1, 4, 2, "pool"),), stem_width=4)
    with pytest.raises(SpecError, match="pools a 1x1 map by 2"):
        layer_counts(spec, input_size=1)


def test_budget_refuses_with_count_and_budget():
    spec = PRESETS["resnet18"].spec
    with pytest.raises(BudgetError, match=r"resnet18 has 11,173,962 trainable parameters, over the budget of 5,000,000"):
        check_budget(spec, name="resnet18")
    assert check_budget(spec, budget=11_173_962) == 11_173_962
    assert check_budget(PRESETS["approach-2a"].spec) == 4_918_602
