import dataclasses

import pytest
import torch
import torch.nn.functional as F

from budgetnet.counts import count_macs, count_params
from budgetnet.model import BasicBlock, build_model
from budgetnet.presets import PRESETS
from budgetnet.spec import ResNetSpec, StageSpec


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_trains_one_step(name):
    torch.manual_seed(0)
    model = build_model(PRESETS[name].spec)
    x = torch.randn(2, 3, 32, 32)
    model.fit_whitening(torch.randn(16, 3, 32, 32))  # a whitening stem is set from data, not trained
    logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 7])).backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            assert pname == "stem.conv.weight" and PRESETS[name].spec.stem == "whiten" and p.grad is None
            continue
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"


def test_features_and_head_compose_to_forward():
    spec = ResNetSpec((StageSpec(1, 8, 1), StageSpec(1, 16, 2)), stem_width=8)
    model = build_model(spec).eval()
    x = torch.randn(3, 3, 32, 32)
    features = model.forward_features(x)
    assert features.shape == (3, 16, 16, 16)
    assert torch.equal(model.forward_head(features), model(x))


def test_projection_only_when_shape_changes():
    spec = ResNetSpec((StageSpec(2, 8, 1), StageSpec(1, 16, 2)), stem_width=8, skip_kernel=3)
    blocks = [m for m in build_model(spec).modules() if isinstance(m, BasicBlock)]
    assert [type(b.shortcut).__name__ for b in blocks] == ["Identity", "Identity", "ConvBN"]
    assert blocks[2].shortcut.conv.kernel_size == (3, 3)
    assert blocks[2].shortcut.conv.stride == (2, 2)


def test_stem_is_stride_one_without_max_pool():
    model = build_model(PRESETS["approach-2a"].spec)
    assert model.stem.conv.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


def test_zero_init_residual_zeroes_last_bn_only():
    spec = ResNetSpec((StageSpec(2, 8, 1),), stem_width=8)
    plain = build_model(spec)
    zeroed = build_model(spec, zero_init_residual=True)
    for block in (m for m in zeroed.modules() if isinstance(m, BasicBlock)):
        assert torch.count_nonzero(block.bn2.weight) == 0
        assert torch.all(block.bn1.weight == 1)
    assert all(torch.all(b.bn2.weight == 1) for b in plain.modules() if isinstance(b, BasicBlock))


def test_he_init_scale():
    torch.manual_seed(0)
    model = build_model(ResNetSpec((StageSpec(1, 64, 1),), stem_width=64))
    w = model.stages[0][0].conv1.weight
    expected_std = (2.0 / (64 * 3 * 3)) ** 0.5  # kaiming normal, fan_out, ReLU gain
    assert abs(w.std().item() - expected_std) / expected_std < 0.05


def _twins(**changes):
    """Two models of the same weights: the plain spec and the spec with `changes`."""
    spec = ResNetSpec((StageSpec(1, 8, 1), StageSpec(1, 16, 2, "pool")), stem_width=8)
    plain = build_model(spec).eval()
    changed = build_model(dataclasses.replace(spec, **changes)).eval()
    changed.load_state_dict(plain.state_dict())
    return plain, changed


def test_gelu_activation_replaces_every_relu():
    torch.manual_seed(0)
    plain, gelu = _twins(activation="gelu")
    x = torch.randn(2, 3, 32, 32)
    stem = F.gelu(gelu.stem(x))
    block = gelu.stages[0][0]
    expected = F.gelu(block.bn2(block.conv2(F.gelu(block.bn1(block.conv1(stem))))) + stem)
    assert torch.allclose(gelu.stages[0](stem), expected)
    assert not torch.allclose(gelu(x), plain(x))


def test_max_pool_head_and_logit_scale():
    torch.manual_seed(0)
    plain, scaled = _twins(head_pool="max", logit_scale=0.125)
    features = torch.randn(3, 16, 8, 8)
    assert torch.allclose(scaled.forward_head(features), 0.125 * plain.head(features.amax(dim=(2, 3))))
    assert torch.allclose(plain.forward_head(features), plain.head(features.mean(dim=(2, 3))))
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(scaled.forward_head(scaled.forward_features(x)), scaled(x))


@pytest.mark.parametrize("changes", [{"activation": "gelu"}, {"head_pool": "max"}, {"logit_scale": 0.125}])
def test_head_and_activation_fields_add_no_parameters_and_no_macs(changes):
    spec = PRESETS["resnet-cpu"].spec
    changed = dataclasses.replace(spec, **changes)
    assert count_params(changed) == count_params(spec) == build_model(changed).num_params()
    assert count_macs(changed) == count_macs(spec)
