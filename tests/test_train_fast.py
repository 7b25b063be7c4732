"""The fast recipe on CPU, scaled down: cosine schedule with warm-up, Nesterov, EMA, flip TTA, precision by the CPU."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from budgetnet.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from budgetnet.errors import BudgetnetError
from budgetnet.rundir import RunDir
from budgetnet.train.ema import LOOKAHEAD_DECAY, Lookahead, WeightEMA
from budgetnet.train.recipe import RECIPES, RecipeError
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


def step_to_with(lookahead: Lookahead, value: float, step: int, total: int) -> float:
    """Set the model's one weight to `value` as if a step had trained it there, then let Lookahead act."""
    with torch.no_grad():
        lookahead.source.weight.fill_(value)
    lookahead.after_step(step, total)
    return lookahead.source.weight.item()


def test_lookahead_syncs_every_period_with_a_growing_share_and_ends_on_the_slow_weights():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    lookahead = Lookahead(model, period=2)
    total = 10
    step_to = functools.partial(step_to_with, lookahead, total=total)

    assert step_to(1.0, 1) == 1.0  # no sync between periods: the trained weight stays
    kept = LOOKAHEAD_DECAY ** 2 * (2 / 10) ** 3
    assert step_to(1.0, 2) == pytest.approx(1 - kept)  # slow 0 pulled towards 1, and training restarts there
    slow = 1 - kept
    kept8 = LOOKAHEAD_DECAY ** 2 * (8 / 10) ** 3
    assert lookahead.kept_share(8, total) == pytest.approx(kept8) and kept8 > kept  # later syncs keep more
    assert step_to(5.0, 8) == pytest.approx(kept8 * slow + (1 - kept8) * 5.0)
    slow = kept8 * slow + (1 - kept8) * 5.0
    assert step_to(9.0, 10) == pytest.approx(slow)  # the last step takes the slow weights, whatever was trained
    short = Lookahead(model, period=5)  # a run of fewer steps than a period never synced: it keeps what it trained
    assert short.slow["weight"].item() != 4.0 and step_to_with(short, 4.0, 3, 3) == 4.0
    restored = Lookahead(model, period=2)
    restored.load_state_dict(lookahead.state_dict())
    assert torch.equal(restored.slow["weight"], lookahead.slow["weight"])
    with pytest.raises(ValueError, match="do not match"):
        Lookahead(torch.nn.Linear(1, 1), period=2).load_state_dict(lookahead.state_dict())


def test_lookahead_run_resumes_mid_epoch_bit_identically_and_differs_from_one_without(tmp_path):
    recipe = tiny_fast(lookahead=2)
    data = fake_cifar()
    assert_mid_epoch_resume_is_bit_identical(TINY_SPEC, recipe, data, tmp_path, stop_after=5)
    state = load_checkpoint(tmp_path / "straight")
    slow = state.lookahead["slow"]
    assert set(slow) < set(state.model) and not any("running" in name for name in slow)  # parameters only
    for name, tensor in slow.items():  # the run ends on the slow weights
        assert torch.equal(tensor, state.model[name]), name
    new_run(TINY_SPEC, tiny_fast(), data, tmp_path / "plain", options=QUIET)
    plain = load_checkpoint(tmp_path / "plain")
    assert plain.lookahead is None and not torch.equal(plain.model["head.weight"], state.model["head.weight"])


def test_lookahead_must_be_a_step_count():
    with pytest.raises(RecipeError, match="lookahead must be 0"):
        tiny_fast(lookahead=-1)


def test_resuming_a_lookahead_run_without_its_slow_weights_is_one_error(tmp_path):
    data = fake_cifar()
    with pytest.raises(Exception, match="interrupted"):
        new_run(TINY_SPEC, tiny_fast(lookahead=2), data, tmp_path / "run",
                options=RunOptions(quiet=True, stop=StopAtStep(5)))
    path = RunDir(tmp_path / "run").checkpoint
    state = torch.load(path, weights_only=True)
    save_checkpoint(path, {k: v for k, v in state.items() if k not in ("kind", "version", "lookahead")})
    with pytest.raises(BudgetnetError, match="cannot resume .*lookahead weights do not match"):
        resume_run(tmp_path / "run", data=data, options=QUIET)
