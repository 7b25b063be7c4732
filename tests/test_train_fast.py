"""The fast recipe on CPU, scaled down: cosine schedule with warm-up, Nesterov, EMA, flip TTA, precision by the CPU."""

from __future__ import annotations

import math

import pytest
import torch

from budgetnet.checkpoint import load_checkpoint, model_from_checkpoint
from budgetnet.train.ema import WeightEMA
from budgetnet.train.recipe import RECIPES
from budgetnet.train.schedule import lr_at
from budgetnet.train.session import RunOptions, new_run, resume_run
from test_train_core import StopAtStep
from train_fixtures import TINY_SPEC, fake_cifar

QUIET = RunOptions(quiet=True)


def tiny_fast(**changes):
    return RECIPES["fast"].replace(epochs=3, batch_size=16, warmup_epochs=1.0, **changes)


def test_fast_recipe_fields():
    r = RECIPES["fast"]
    assert (r.schedule, r.nesterov, r.tta, r.precision, r.augment) == ("cosine", True, True, "auto", "online")
    assert r.batch_size == 512 and 0 < r.ema_decay < 1 and r.label_smoothing > 0 and r.warmup_epochs > 0


def test_cosine_schedule_warms_up_then_decays_to_zero():
    r = RECIPES["fast"].replace(epochs=10, warmup_epochs=2.0)
    steps = 100
    assert lr_at(r, 0, 0, steps) == pytest.approx(r.lr * 1 / 200)  # first step of warm-up
    assert lr_at(r, 1, 99, steps) == pytest.approx(r.lr)  # warm-up reaches the peak
    assert lr_at(r, 2, 0, steps) == pytest.approx(r.lr)  # decay starts from the peak
    assert lr_at(r, 6, 0, steps) == pytest.approx(r.lr * 0.5 * (1 + math.cos(math.pi * 0.5)))  # half way
    assert 0 < lr_at(r, 9, 99, steps) < r.lr * 1e-3  # ends near 0
    lrs = [lr_at(r, e, s, steps) for e in range(2, 10) for s in range(steps)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # monotone after warm-up


def test_ema_trails_the_weights():
    model = torch.nn.Linear(2, 1)
    ema = WeightEMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update()  # decay is ramped: min(0.5, 2/11) for the first update
    before = ema.module.weight.clone()
    ema.update()
    assert torch.all(ema.module.weight > before) and torch.all(ema.module.weight < 1.0)
    restored = WeightEMA(model, 0.5)
    restored.load_state_dict(ema.state_dict())
    assert torch.equal(restored.module.weight, ema.module.weight) and restored.updates == 2


def test_fast_recipe_trains_on_cpu_and_reports_the_averaged_weights(tmp_path):
    outcome = new_run(TINY_SPEC, tiny_fast(), fake_cifar(), tmp_path / "run", options=QUIET)
    assert [m["epoch"] for m in outcome.history] == [1, 2, 3]
    state = load_checkpoint(tmp_path / "run")
    assert state.ema is not None and int(state.ema["updates"]) == 3 * 4
    assert state.recipe.tta is True
    model = model_from_checkpoint(state)
    for name, tensor in model.state_dict().items():  # exports and eval use the average, not the raw weights
        assert torch.equal(tensor, state.ema["module"][name])
    assert not torch.equal(state.model["head.weight"], state.ema["module"]["head.weight"])


def assert_mid_epoch_resume_is_bit_identical(spec, recipe, data, tmp_path, stop_after: int) -> None:
    """A run stopped after `stop_after` steps and resumed ends with the weights and EMA of an unbroken run."""
    new_run(spec, recipe, data, tmp_path / "straight", options=QUIET)
    with pytest.raises(Exception, match="interrupted"):
        new_run(spec, recipe, data, tmp_path / "split", options=RunOptions(quiet=True, stop=StopAtStep(stop_after)))
    resume_run(tmp_path / "split", data=data, options=QUIET)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    for key in a.model:
        assert torch.equal(a.model[key], b.model[key]), key
        assert torch.equal(a.ema["module"][key], b.ema["module"][key]), key


def test_fast_recipe_resume_mid_epoch_is_bit_identical(tmp_path):
    assert_mid_epoch_resume_is_bit_identical(TINY_SPEC, tiny_fast(), fake_cifar(), tmp_path, stop_after=6)


def test_compiled_training_saves_plain_weights(tmp_path):
    recipe = RECIPES["paper"].replace(epochs=1, batch_size=32, augment="none")
    new_run(TINY_SPEC, recipe, fake_cifar(), tmp_path / "run", options=RunOptions(quiet=True, compile="default"))
    state = load_checkpoint(tmp_path / "run")
    assert not any(key.startswith("_orig_mod") for key in state.model)  # loadable without torch.compile
    model_from_checkpoint(state)
