"""Frozen BatchNorm scales and a separate lr for BatchNorm biases (the recipe's freeze_bn_scale, bn_bias_lr)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from budgetnet.checkpoint import load_checkpoint
from budgetnet.model import build_model
from budgetnet.train.optimizer import build_optimizer
from budgetnet.train.recipe import RECIPES, RecipeError
from budgetnet.train.session import RunOptions, new_run
from test_train_cpu import TINY_CPU_SPEC, tiny_cpu
from test_train_fast import assert_mid_epoch_resume_is_bit_identical
from train_fixtures import fake_cifar

QUIET = RunOptions(quiet=True)
# the optimiser options together with the head options they were tried with
TINY_HEAD_SPEC = dataclasses.replace(TINY_CPU_SPEC, head_pool="max", logit_scale=0.125)


def _bn_params(model, attr):
    return [getattr(m, attr) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_default_optimizer_is_one_group_over_every_trainable_parameter():
    model = build_model(TINY_CPU_SPEC)
    optimizer = build_optimizer(model, RECIPES["cpu"])
    (group,) = optimizer.param_groups
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters() if p.requires_grad]
    assert (group["lr_scale"], group["weight_decay"], group["nesterov"]) == (1.0, 5e-4, True)


def test_bn_biases_get_their_own_lr_and_the_same_decay_per_step():
    model = build_model(TINY_CPU_SPEC)
    recipe = RECIPES["cpu"].replace(bn_bias_lr=64.0)
    main, biases = build_optimizer(model, recipe).param_groups
    assert {id(p) for p in biases["params"]} == {id(p) for p in _bn_params(model, "bias")}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in main["params"]} | {id(p) for p in biases["params"]} == trainable
    assert not {id(p) for p in main["params"]} & {id(p) for p in biases["params"]}
    assert biases["lr_scale"] == 64.0 and main["lr_scale"] == 1.0
    # SGD decays by lr x weight_decay per step: the same for both groups
    assert biases["lr_scale"] * biases["weight_decay"] == pytest.approx(main["lr_scale"] * main["weight_decay"])


def test_freeze_bn_scale_leaves_scales_out_of_the_optimizer():
    model = build_model(TINY_CPU_SPEC)
    optimizer = build_optimizer(model, RECIPES["cpu"].replace(freeze_bn_scale=True))
    scales = {id(p) for p in _bn_params(model, "weight")}
    optimized = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert scales and not scales & optimized
    assert {id(p) for p in _bn_params(model, "bias")} <= optimized


def test_the_bias_group_steps_at_its_scaled_lr(tmp_path):
    # one plain SGD step (no momentum, no decay): a bias moves bn_bias_lr times as far as at scale 1
    data = fake_cifar(n_train=32, n_test=8)
    one_step = RECIPES["cpu"].replace(epochs=1, batch_size=32, momentum=0.0, nesterov=False, weight_decay=0.0, warmup_epochs=0.0,
                        ema_decay=0.0, augment="none", precision="fp32", schedule="multistep", lr=0.01)
    moves = {}
    for scale in (1.0, 8.0):
        new_run(TINY_CPU_SPEC, one_step.replace(bn_bias_lr=scale), data, tmp_path / str(scale), options=QUIET)
        torch.manual_seed(one_step.seed)  # the init new_run starts from
        start = build_model(TINY_CPU_SPEC)
        after = load_checkpoint(tmp_path / str(scale)).model
        moves[scale] = (after["stages.0.0.bn1.bias"] - start.state_dict()["stages.0.0.bn1.bias"]).abs().sum().item()
        conv_moved = (after["stages.0.0.conv1.weight"] - start.state_dict()["stages.0.0.conv1.weight"]).abs().sum().item()
        moves[f"conv{scale}"] = conv_moved
    assert moves[1.0] > 0
    assert moves[8.0] == pytest.approx(8 * moves[1.0], rel=1e-3)
    assert moves["conv8.0"] == pytest.approx(moves["conv1.0"], rel=1e-3)


def test_frozen_scales_stay_at_one_through_a_run(tmp_path):
    recipe = tiny_cpu(freeze_bn_scale=True, bn_bias_lr=64.0)
    new_run(TINY_HEAD_SPEC, recipe, fake_cifar(n_train=96, n_test=30), tmp_path / "run", options=QUIET)
    state = load_checkpoint(tmp_path / "run")
    scales = [v for k, v in state.model.items() if k.endswith("bn1.weight") or k.endswith("bn2.weight")]
    assert scales and all(torch.equal(s, torch.ones_like(s)) for s in scales)
    biases = [v for k, v in state.model.items() if k.endswith("bn1.bias")]
    assert all(b.abs().sum() > 0 for b in biases)  # the biases trained


def test_resume_mid_epoch_is_bit_identical_with_frozen_scales_and_bias_lr(tmp_path):
    recipe = tiny_cpu(freeze_bn_scale=True, bn_bias_lr=64.0)
    assert_mid_epoch_resume_is_bit_identical(TINY_HEAD_SPEC, recipe, fake_cifar(n_train=96, n_test=30), tmp_path,
                                             stop_after=8)


def test_bn_bias_lr_must_be_positive():
    with pytest.raises(RecipeError, match="bn bias lr must be positive, got 0"):
        RECIPES["cpu"].replace(bn_bias_lr=0.0)


def test_frozen_scales_get_no_gradient():
    model = build_model(TINY_CPU_SPEC)
    build_optimizer(model, RECIPES["cpu"].replace(freeze_bn_scale=True))
    model.fit_whitening(torch.randn(8, 3, 32, 32))
    F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is None for p in _bn_params(model, "weight"))
    assert all(p.grad is not None for p in _bn_params(model, "bias"))
