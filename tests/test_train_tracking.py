"""`train --tensorboard` writes metrics.jsonl's numbers and the per-step lr as events that TensorBoard reads back,
and `--eval-every N` measures every N-th epoch and the last, leaving the trained weights unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from budgetnet.checkpoint import load_checkpoint
from budgetnet.cli.main import main
from budgetnet.train.recipe import Recipe
from budgetnet.train.schedule import lr_at
from train_fixtures import TINY_SPEC, write_binary_cifar


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("BUDGETNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    TINY_SPEC.save(tmp_path / "tiny.json")
    return {"data": str(write_binary_cifar(tmp_path / "cifar")), "spec": str(tmp_path / "tiny.json")}


def _train(env: dict, out: str, *extra: str) -> int:
    return main(["train", "--arch", env["spec"], "--data", env["data"], "--out", out, "--quiet", "--augment", "none",
                 "--batch-size", "16", "--schedule", "cosine", "--warmup-epochs", "1", "--epochs", "3", *extra])


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every event
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events_read_back_as_the_runs_metrics_and_lr(env: dict) -> None:
    assert _train(env, "run", "--tensorboard") == 0
    run = Path("run")
    metrics = _metrics(run)
    events = _events(run / "tensorboard")
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "images_per_s"):
        assert events[f"epoch/{key}"] == [(m["epoch"], pytest.approx(m[key], rel=1e-6)) for m in metrics], key
    steps = metrics[0]["steps"]
    assert steps == 4 and all(m["steps"] == steps for m in metrics)  # 50 images at batch 16 (last one short)
    recipe = Recipe.from_dict(json.loads((run / "recipe.json").read_text()))
    expected = [(e * steps + s, pytest.approx(lr_at(recipe, e, s, steps), rel=1e-6))
                for e in range(recipe.epochs) for s in range(steps)]
    assert events["step/lr"] == expected
    lrs = [v for _, v in events["step/lr"]]
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1 and lrs[0] < lrs[peak] > lrs[-1]  # a warm-up, then the decay


def test_without_the_flag_no_events_are_written(env: dict) -> None:
    assert _train(env, "run") == 0
    assert not (Path("run") / "tensorboard").exists()


def test_a_missing_tensorboard_package_names_the_extra_before_any_work(env: dict, monkeypatch, capsys) -> None:
    import builtins
    import sys

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ModuleNotFoundError("No module named 'tensorboard'", name="tensorboard")
        return real_import(name, *args, **kwargs)

    for module in [m for m in sys.modules if m.startswith(("tensorboard", "torch.utils.tensorboard"))]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert _train(env, "run", "--tensorboard") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budgetnet[tensorboard]" in err
    assert not Path("run").exists()  # refused before the run directory was made


def test_eval_every_measures_every_nth_epoch_and_the_last_with_the_same_weights(env: dict) -> None:
    assert _train(env, "every", "--epochs", "5", "--eval-every", "2") == 0
    assert _train(env, "all", "--epochs", "5") == 0
    sparse, full = _metrics(Path("every")), _metrics(Path("all"))
    assert [m["epoch"] for m in sparse if "test_acc" in m] == [2, 4, 5]
    assert [m["epoch"] for m in full if "test_acc" in m] == [1, 2, 3, 4, 5]
    assert [m["train_loss"] for m in sparse] == [m["train_loss"] for m in full]
    for a, b in zip(load_checkpoint(Path("every")).weights.values(), load_checkpoint(Path("all")).weights.values()):
        assert torch.equal(a, b)
    assert sparse[-1]["test_acc"] == full[-1]["test_acc"]
    assert main(["plot", "every", "--out", "curves.png"]) == 0 and Path("curves.png").stat().st_size > 0
