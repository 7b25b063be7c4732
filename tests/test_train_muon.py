"""--optimizer muon: orthogonalised, norm-held steps for conv filters and plain SGD for everything else."""

from __future__ import annotations

import json
import math

import pytest
import torch

from budgetnet.checkpoint import load_checkpoint
from budgetnet.model import build_model
from budgetnet.train.muon import NEWTON_SCHULZ, NEWTON_SCHULZ_STEPS, Muon, orthogonalise
from budgetnet.train.optimizer import build_optimizer
from budgetnet.train.recipe import RECIPES, RecipeError
from budgetnet.train.session import RunOptions, new_run
from test_train_cpu import TINY_CPU_SPEC, tiny_cpu
from test_train_fast import assert_mid_epoch_resume_is_bit_identical
from train_fixtures import fake_cifar

QUIET = RunOptions(quiet=True)


@pytest.mark.parametrize("shape", [(64, 216), (216, 64), (16, 16), (256, 2304)])
def test_orthogonalise_keeps_the_singular_vectors_and_maps_each_value_by_the_quintic(shape):
    torch.manual_seed(0)
    matrix = torch.randn(shape) * 3.0
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    result = orthogonalise(matrix)
    assert result.shape == matrix.shape
    in_basis = u.T @ result @ vh.T  # diagonal if the singular vectors are kept
    diagonal = torch.diagonal(in_basis)
    assert (in_basis - torch.diag(diagonal)).abs().max() < 1e-3
    a, b, c = NEWTON_SCHULZ
    x = s / s.norm()  # the Frobenius norm is the root of the squared singular values
    for _ in range(NEWTON_SCHULZ_STEPS):
        x = a * x + b * x**3 + c * x**5
    torch.testing.assert_close(diagonal, x, rtol=1e-3, atol=1e-4)
    assert diagonal.max() < 1.25


def test_a_large_bank_comes_out_near_orthogonal():
    torch.manual_seed(0)
    values = torch.linalg.svdvals(orthogonalise(torch.randn(256, 2304)))
    assert values.min() > 0.6 and values.max() < 1.25  # values of about 1/16 of the norm are lifted to about 1


def test_orthogonalise_leaves_a_zero_update_at_zero():
    assert torch.equal(orthogonalise(torch.zeros(8, 12)), torch.zeros(8, 12))


def _muon_recipe(**changes):
    return RECIPES["cpu-small"].replace(optimizer="muon", muon_lr=0.2, **changes)


def test_muon_puts_every_trained_conv_filter_in_its_own_group():
    model = build_model(TINY_CPU_SPEC)
    main, filters = build_optimizer(model, _muon_recipe()).param_groups
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.requires_grad]
    assert {id(p) for p in filters["params"]} == {id(p) for p in convs}
    assert model.stem.conv.weight.requires_grad is False  # the frozen whitening filters stay out
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(id(p) for g in (main, filters) for p in g["params"]) == sorted(id(p) for p in trainable)
    assert filters["orthogonal"] and filters["weight_decay"] == 0.0
    assert filters["lr_scale"] * RECIPES["cpu-small"].lr == pytest.approx(0.2)  # the schedule's peak gives muon_lr
    assert not main["orthogonal"] and main["weight_decay"] == RECIPES["cpu-small"].weight_decay


def test_muon_with_a_bn_bias_lr_makes_three_disjoint_groups():
    model = build_model(TINY_CPU_SPEC)
    groups = build_optimizer(model, _muon_recipe(bn_bias_lr=64.0)).param_groups
    assert [g["lr_scale"] for g in groups][:2] == [1.0, 64.0] and groups[2]["orthogonal"]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len([p for p in model.parameters() if p.requires_grad])


def test_sgd_recipes_still_get_torch_sgd():
    assert type(build_optimizer(build_model(TINY_CPU_SPEC), RECIPES["cpu"])) is torch.optim.SGD


@pytest.mark.parametrize("nesterov", [True, False])
def test_the_plain_groups_step_exactly_as_torch_sgd(nesterov):
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    muon = Muon([{"params": ours, "weight_decay": 1e-2}], lr=0.1, momentum=0.9, nesterov=nesterov)
    sgd = torch.optim.SGD([{"params": theirs, "weight_decay": 1e-2}], lr=0.1, momentum=0.9, nesterov=nesterov)
    for _ in range(4):
        grads = [torch.randn_like(p) for p in ours]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        muon.step()
        sgd.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


def test_a_filter_step_rescales_the_bank_then_moves_it_by_the_orthogonalised_momentum():
    torch.manual_seed(0)
    bank = torch.nn.Parameter(torch.randn(6, 4, 3, 3) * 0.05)
    start = bank.detach().clone()
    optimizer = Muon([{"params": [bank], "orthogonal": True, "weight_decay": 0.5}], lr=0.1, momentum=0.9, nesterov=True)
    grad = torch.randn_like(bank)
    bank.grad = grad.clone()
    optimizer.step()
    held = start * math.sqrt(6) / start.norm()  # norm sqrt(out channels); weight decay does not apply
    nesterov = grad + 0.9 * grad  # the first step's buffer is the gradient itself
    expected = held - 0.1 * orthogonalise(nesterov.reshape(6, -1)).view_as(bank)
    torch.testing.assert_close(bank.detach(), expected, rtol=1e-5, atol=1e-6)


def test_a_muon_run_trains_and_resumes_mid_epoch_bit_identically(tmp_path):
    recipe = tiny_cpu(optimizer="muon", muon_lr=0.2)
    data = fake_cifar(n_train=96, n_test=30)
    assert_mid_epoch_resume_is_bit_identical(TINY_CPU_SPEC, recipe, data, tmp_path, stop_after=8)
    assert json.loads((tmp_path / "straight" / "recipe.json").read_text())["optimizer"] == "muon"
    saved = load_checkpoint(tmp_path / "straight")
    torch.manual_seed(recipe.seed)  # the init the run started from
    start = build_model(TINY_CPU_SPEC).state_dict()
    assert not torch.equal(saved.model["stages.0.0.conv1.weight"], start["stages.0.0.conv1.weight"])


@pytest.mark.parametrize("changes, message", [
    ({"optimizer": "adam"}, "optimizer must be one of sgd, muon, got 'adam'"),
    ({"muon_lr": 0.0}, "muon lr must be positive, got 0"),
])
def test_bad_optimizer_values_are_refused(changes, message):
    with pytest.raises(RecipeError, match=message):
        RECIPES["cpu"].replace(**changes)
