"""Recipe, LR schedule, epoch order, resume bit-identity and NaN handling, on tiny synthetic data."""

from __future__ import annotations

import json

import pytest
import torch

from budgetnet.checkpoint import load_checkpoint
from budgetnet.errors import BudgetError
from budgetnet.rundir import RunDir
from budgetnet.train.batches import batch_slices, epoch_order
from budgetnet.train.loop import StopRequest, TrainingDiverged
from budgetnet.train.recipe import RECIPES, Recipe, RecipeError, scale_milestones
from budgetnet.train.schedule import lr_at
from budgetnet.train.session import RunOptions, new_run, resume_run
from train_fixtures import TINY_SPEC, fake_cifar

QUIET = RunOptions(quiet=True)
TINY = Recipe(epochs=4, batch_size=16, augment="none", milestones=(2, 3))


def test_paper_recipe_is_section_2_2() -> None:
    r = RECIPES["paper"]
    assert (r.lr, r.momentum, r.weight_decay, r.batch_size, r.epochs) == (0.1, 0.9, 1e-4, 32, 50)
    assert r.milestones == (15, 25, 35, 45) and r.gamma == 0.1 and r.augment == "offline"
    assert Recipe.from_dict(json.loads(r.to_json())) == r


def test_lr_is_exact_at_milestones() -> None:
    r = RECIPES["paper"]
    expected = {0: 0.1, 14: 0.1, 15: 0.1 * 0.1, 24: 0.1 * 0.1, 25: 0.1 * 0.1**2, 35: 0.1 * 0.1**3, 45: 0.1 * 0.1**4, 49: 0.1 * 0.1**4}
    for epoch, lr in expected.items():
        assert lr_at(r, epoch, 0, 9375) == lr
        assert lr_at(r, epoch, 9374, 9375) == lr  # constant within an epoch
    warm = r.replace(warmup_epochs=2)
    assert lr_at(warm, 0, 0, 10) == pytest.approx(0.1 / 20)
    assert lr_at(warm, 1, 9, 10) == 0.1


def test_scaled_milestones_keep_proportions() -> None:
    assert scale_milestones((15, 25, 35, 45), 10) == (3, 5, 7, 9)
    assert scale_milestones((15, 25, 35, 45), 2) == (1,)
    assert scale_milestones((15, 25, 35, 45), 50) == (15, 25, 35, 45)


@pytest.mark.parametrize("change", [{"epochs": 0}, {"lr": -1.0}, {"milestones": (5, 3)}, {"augment": "magic"},
                                    {"precision": "fp16"}, {"momentum": 1.0}])
def test_bad_recipe_values_are_refused(change: dict) -> None:
    with pytest.raises(RecipeError):
        Recipe().replace(**change)


def test_epoch_order_is_a_pure_permutation_and_shards_cover_it() -> None:
    a, b = epoch_order(100, 3, 7), epoch_order(100, 3, 7)
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(100))
    assert not torch.equal(a, epoch_order(100, 4, 7)) and not torch.equal(a, epoch_order(100, 3, 8))
    shards = [epoch_order(101, 3, 7, rank, 2) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == 50
    assert sorted(torch.cat(shards).tolist()) == sorted(epoch_order(101, 3, 7)[:100].tolist())


def test_a_last_batch_of_one_is_dropped() -> None:
    assert [s.stop - s.start for s in batch_slices(33, 16)] == [16, 16]
    assert [s.stop - s.start for s in batch_slices(34, 16)] == [16, 16, 2]


def _weights(path) -> dict:
    state = load_checkpoint(path)
    return {**state.model, **{f"opt.{k}": v["momentum_buffer"] for k, v in state.optimizer["state"].items()}}


def _assert_same_run(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert RunDir(a).read_metrics()[-1]["train_loss"] == RunDir(b).read_metrics()[-1]["train_loss"]


@pytest.mark.parametrize("val_split", [0, 8])
def test_resume_at_epoch_boundary_is_bit_identical(tmp_path, monkeypatch, val_split: int) -> None:
    data = fake_cifar()
    recipe = TINY.replace(val_split=val_split)
    straight = new_run(TINY_SPEC, recipe, data, tmp_path / "straight", options=QUIET)
    assert [m["epoch"] for m in straight.history] == [1, 2, 3, 4]

    stop = StopRequest()
    append = RunDir.append_metrics

    def stop_after_two(self, metrics):  # a Ctrl-C that lands at the end of epoch 2
        append(self, metrics)
        stop.requested = metrics["epoch"] == 2

    monkeypatch.setattr(RunDir, "append_metrics", stop_after_two)
    with pytest.raises(Exception, match="interrupted"):
        new_run(TINY_SPEC, recipe, data, tmp_path / "split", options=RunOptions(quiet=True, stop=stop))
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "split").epoch == 2
    resumed = resume_run(tmp_path / "split", data=data, options=QUIET)
    assert [m["epoch"] for m in resumed.history] == [1, 2, 3, 4]
    _assert_same_run(tmp_path / "straight", tmp_path / "split")


class StopAtStep(StopRequest):
    """A Ctrl-C that lands after a given number of training steps."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.left = steps

    @property
    def requested(self) -> bool:  # type: ignore[override]
        self.left -= 1
        return self.left < 0

    @requested.setter
    def requested(self, value: bool) -> None:
        pass


def test_resume_mid_epoch_is_bit_identical(tmp_path) -> None:
    data = fake_cifar()
    new_run(TINY_SPEC, TINY, data, tmp_path / "straight", options=QUIET)
    with pytest.raises(Exception, match="interrupted"):
        new_run(TINY_SPEC, TINY, data, tmp_path / "split", options=RunOptions(quiet=True, stop=StopAtStep(6)))
    state = load_checkpoint(tmp_path / "split")
    assert state.epoch == 1 and state.partial["step"] == 2  # 4 steps per epoch: stopped in epoch 2
    resume_run(tmp_path / "split", data=data, options=QUIET)
    _assert_same_run(tmp_path / "straight", tmp_path / "split")


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_good_checkpoint(tmp_path) -> None:
    exploding = TINY.replace(milestones=(2,), gamma=1e13)  # lr 1e12 from epoch 3 on
    with pytest.raises(TrainingDiverged, match=r"epoch 3, step \d+"):
        new_run(TINY_SPEC, exploding, fake_cifar(), tmp_path / "run", options=QUIET)
    state = load_checkpoint(tmp_path / "run")
    assert state.epoch == 2
    assert all(torch.isfinite(v).all() for v in state.model.values() if v.is_floating_point())
    assert [m["epoch"] for m in RunDir(tmp_path / "run").read_metrics()] == [1, 2]


def test_over_budget_is_refused_before_reading_data(tmp_path) -> None:
    with pytest.raises(BudgetError, match="over the budget"):
        new_run("resnet18", TINY, "/nonexistent/data", tmp_path / "run", options=QUIET)
    assert not (tmp_path / "run").exists()


def test_val_split_holds_out_images_and_reports_val_metrics(tmp_path) -> None:
    out = new_run(TINY_SPEC, TINY.replace(epochs=1, val_split=10), fake_cifar(), tmp_path / "run", options=QUIET)
    assert {"val_loss", "val_acc"} <= out.history[0].keys()
    held = json.loads((tmp_path / "run" / "val_indices.json").read_text())
    assert len(held) == 10 and json.loads((tmp_path / "run" / "data.json").read_text())["train_rows"] == 54


def test_finished_run_resumes_as_a_no_op(tmp_path) -> None:
    data = fake_cifar()
    new_run(TINY_SPEC, TINY.replace(epochs=1), data, tmp_path / "run", options=QUIET)
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    out = resume_run(tmp_path / "run", data=data, options=QUIET)
    assert out.finished and (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


def test_bf16_autocast_trains_on_cpu_and_is_recorded(tmp_path) -> None:
    out = new_run(TINY_SPEC, TINY.replace(epochs=1, precision="bf16"), fake_cifar(), tmp_path / "run", options=QUIET)
    assert out.history[0]["train_loss"] == pytest.approx(out.history[0]["train_loss"])  # finite, not NaN
    assert load_checkpoint(tmp_path / "run").recipe.precision == "bf16"
    assert all(v.dtype != torch.bfloat16 for v in load_checkpoint(tmp_path / "run").model.values())
