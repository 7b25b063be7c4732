"""Ghost BatchNorm (the recipe's ghost_batch): per-part normalisation in training, whole-batch running statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from budgetnet.checkpoint import load_checkpoint, model_from_checkpoint
from budgetnet.model import build_model
from budgetnet.train.ghostnorm import GhostBatchNorm2d, use_ghost_batch_norm
from budgetnet.train.recipe import RECIPES, RecipeError
from budgetnet.train.session import RunOptions, new_run
from test_train_cpu import TINY_CPU_SPEC, tiny_cpu
from test_train_fast import assert_mid_epoch_resume_is_bit_identical
from train_fixtures import fake_cifar


def _trained_bn(channels: int = 6) -> nn.BatchNorm2d:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(channels)
    nn.init.uniform_(bn.weight, 0.5, 1.5)
    nn.init.uniform_(bn.bias, -1, 1)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    return bn


def _batch(n: int, channels: int = 6) -> torch.Tensor:
    # parts of the batch differ in mean, so per-part and whole-batch statistics differ too
    x = torch.randn(n, channels, 5, 5) + torch.arange(n, dtype=torch.float32)[:, None, None, None] / n * 4
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("n, size", [(64, 16), (50, 16)])  # 50: a last, smaller part of 2 images
def test_training_normalises_each_part_by_its_own_statistics(n, size):
    bn = _trained_bn()
    ghost = GhostBatchNorm2d(bn, size).train()
    x = _batch(n)
    expected = torch.cat([F.batch_norm(p, None, None, bn.weight, bn.bias, True, 0.0, bn.eps) for p in x.split(size)])
    assert torch.allclose(ghost(x), expected, atol=1e-5)
    whole = F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    assert not torch.allclose(ghost(x), whole, atol=1e-2)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_statistics_follow_the_whole_batch(momentum):
    plain, ghost = _trained_bn(), GhostBatchNorm2d(_trained_bn(), 8)
    plain.momentum = ghost.momentum = momentum
    plain.train(), ghost.train()
    for n in (40, 37):
        x = _batch(n)
        plain(x), ghost(x)
    assert torch.allclose(ghost.running_mean, plain.running_mean, atol=1e-5)
    assert torch.allclose(ghost.running_var, plain.running_var, rtol=1e-5)
    assert int(ghost.num_batches_tracked) == int(plain.num_batches_tracked) == 2


def test_gradients_match_per_part_batch_norm():
    bn = _trained_bn()
    ghost = GhostBatchNorm2d(bn, 8).train()
    x = _batch(32).requires_grad_(True)
    ghost(x).pow(2).mean().backward()
    x2 = x.detach().clone().requires_grad_(True)
    weight, bias = bn.weight.detach().clone().requires_grad_(True), bn.bias.detach().clone().requires_grad_(True)
    torch.cat([F.batch_norm(p, None, None, weight, bias, True, 0.0, bn.eps) for p in x2.split(8)]).pow(2).mean().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-6)
    assert torch.allclose(ghost.weight.grad, weight.grad, atol=1e-5)
    assert torch.allclose(ghost.bias.grad, bias.grad, atol=1e-5)


def test_evaluation_and_small_batches_are_plain_batch_norm():
    bn = _trained_bn()
    ghost = GhostBatchNorm2d(bn, 8)
    x = _batch(32)
    assert torch.equal(ghost.eval()(x), bn.eval()(x))
    small = _batch(8)
    assert torch.equal(ghost.train()(small), bn.train()(small))  # one part: the whole batch


def test_bf16_autocast_keeps_fp32_running_statistics():
    ghost = GhostBatchNorm2d(_trained_bn(), 8).train()
    with torch.autocast("cpu", torch.bfloat16):
        out = ghost(_batch(32).bfloat16())
    assert out.dtype == torch.bfloat16
    assert ghost.running_mean.dtype == ghost.running_var.dtype == torch.float32


def test_swapping_keeps_the_models_state_and_its_evaluation():
    model = build_model(TINY_CPU_SPEC).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 32, 32)
    expected = model(x)
    use_ghost_batch_norm(model, 2)
    assert any(isinstance(m, GhostBatchNorm2d) for m in model.modules())
    assert not any(type(m) is nn.BatchNorm2d for m in model.modules())
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert torch.equal(model.eval()(x), expected)


def test_a_ghost_batch_run_saves_a_plain_model_and_resumes_bit_identically(tmp_path):
    data = fake_cifar(n_train=96, n_test=30)
    recipe = tiny_cpu(ghost_batch=4)
    new_run(TINY_CPU_SPEC, recipe, data, tmp_path / "run", options=RunOptions(quiet=True))
    state = load_checkpoint(tmp_path / "run")
    model = model_from_checkpoint(state)  # a plain ResNet takes the weights
    assert not any(isinstance(m, GhostBatchNorm2d) for m in model.modules())
    assert state.recipe.ghost_batch == 4
    # ghost batches change what is trained: the same run with whole-batch BatchNorm ends elsewhere
    new_run(TINY_CPU_SPEC, tiny_cpu(), data, tmp_path / "plain", options=RunOptions(quiet=True))
    plain = load_checkpoint(tmp_path / "plain")
    assert not torch.equal(plain.model["stages.0.0.conv1.weight"], state.model["stages.0.0.conv1.weight"])
    assert_mid_epoch_resume_is_bit_identical(TINY_CPU_SPEC, recipe, data, tmp_path / "resume", stop_after=8)


def test_a_ghost_batch_of_one_image_is_refused():
    with pytest.raises(RecipeError, match="ghost batch must hold at least 2 images"):
        RECIPES["cpu"].replace(ghost_batch=1)
