"""`budgetnet train/eval/plot/reproduce` end to end on a tiny dataset in the official binary layout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from budgetnet.checkpoint import load_checkpoint
from budgetnet.cli.main import main
from budgetnet.presets import PRESETS, Preset
from budgetnet.train.recipe import RECIPES
from train_fixtures import TINY_SPEC, write_binary_cifar

METRIC_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "train_seconds",
               "images_per_s"}


@pytest.fixture()
def env(tmp_path, monkeypatch) -> dict:
    monkeypatch.setenv("BUDGETNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "tiny.json"
    TINY_SPEC.save(spec)
    return {"data": str(write_binary_cifar(tmp_path / "cifar")), "spec": str(spec), "tmp": tmp_path}


def _train(env: dict, out: str, *extra: str) -> int:
    return main(["train", "--arch", env["spec"], "--data", env["data"], "--out", out, "--quiet",
                 "--batch-size", "32", *extra])


def test_train_eval_plot_end_to_end(env, capsys) -> None:
    assert _train(env, "run", "--epochs", "2", "--milestones", "1") == 0
    run = env["tmp"] / "run"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2] and all(METRIC_KEYS <= m.keys() for m in lines)
    assert [m["lr"] for m in lines] == [0.1, pytest.approx(0.01)]
    for name in ("spec.json", "recipe.json", "env.json", "data.json"):
        json.loads((run / name).read_text())
    data = json.loads((run / "data.json").read_text())
    assert data["augment"] == "offline" and data["train_rows"] == 300  # 50 originals x 6 copies
    state = load_checkpoint(run)  # weights_only=True
    assert all(getattr(state, entry) is not None for entry in ("recipe", "optimizer", "epoch", "rng", "data", "arch"))
    assert state.epoch == 2 and state.recipe.epochs == 2
    out = capsys.readouterr().out
    assert "final test accuracy" in out and "scaled down" in out
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and " left" in epoch_lines[0] and " left" not in epoch_lines[1]

    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(lines[-1]["test_acc"])  # same weights, same test set
    assert sum(map(sum, result["confusion"])) == 20 and len(result["per_class_accuracy"]) == 10
    assert (run / "eval.json").is_file() and (run / "confusion.png").stat().st_size > 0
    assert main(["eval", str(run / "checkpoints" / "last.pt"), "--tta"]) == 0
    assert "TTA flip (2 views)" in capsys.readouterr().out
    assert main(["eval", str(run), "--tta", "--tta-shift", "1", "--json"]) == 0
    shifted = json.loads(capsys.readouterr().out)
    assert (shifted["tta_shift"], shifted["split"]) == (1, "test") and shifted["flip_accuracy"] is not None
    assert main(["eval", str(run), "--split", "val"]) == 2  # trained without --val-split
    assert "no validation split" in capsys.readouterr().err

    assert main(["plot", str(run)]) == 0 and (run / "curves.png").stat().st_size > 0
    assert _train(env, "run2", "--epochs", "1", "--augment", "online", "--val-split", "5") == 0
    first = json.loads((env["tmp"] / "run2" / "metrics.jsonl").read_text().splitlines()[0])
    capsys.readouterr()
    assert main(["eval", str(env["tmp"] / "run2"), "--split", "val", "--json"]) == 0
    held_out = json.loads(capsys.readouterr().out)
    assert (held_out["split"], held_out["images"]) == ("val", 5)
    assert held_out["accuracy"] == pytest.approx(first["val_acc"])  # the same 5 held-out images
    assert (env["tmp"] / "run2" / "eval-val.json").is_file() and not (env["tmp"] / "run2" / "eval.json").exists()
    assert main(["plot", str(run), str(env["tmp"] / "run2"), "--out", "both.png"]) == 0
    assert (env["tmp"] / "both.png").stat().st_size > 0


def test_a_recipe_without_arch_trains_its_own_network(env) -> None:
    argv = ["train", "--recipe", "cpu-small", "--data", env["data"], "--epochs", "1", "--batch-size", "25",
            "--out", "small", "--quiet"]
    assert main(argv) == 0
    run = env["tmp"] / "small"
    assert load_checkpoint(run).arch == "resnet-cpu-small"
    recipe = json.loads((run / "recipe.json").read_text())
    assert (recipe["name"], recipe["weight_decay"]) == ("cpu-small", RECIPES["cpu-small"].weight_decay)


def test_the_cpu_recipe_trains_cpu_small_on_a_cpu_without_native_bf16(env, monkeypatch, capsys) -> None:
    monkeypatch.setattr("budgetnet.hardware.cpu_flags", lambda *_: frozenset({"avx2", "fma"}))  # as AMD Zen 3
    argv = ["train", "--recipe", "cpu", "--data", env["data"], "--epochs", "1", "--batch-size", "25",
            "--precision", "fp32", "--out", "small", "--quiet"]
    assert main(argv) == 0
    assert "note: this CPU has no native bf16, so --recipe cpu trains the cpu-small recipe" in capsys.readouterr().out
    assert load_checkpoint(env["tmp"] / "small").arch == "resnet-cpu-small"
    recipe = json.loads((env["tmp"] / "small" / "recipe.json").read_text())
    assert (recipe["name"], recipe["optimizer"], recipe["batch_size"]) == ("cpu-small", "muon", 25)  # flags still apply

    assert main([*argv[:-3], "--arch", "resnet-cpu", "--out", "big", "--quiet"]) == 0  # a chosen network is kept
    assert load_checkpoint(env["tmp"] / "big").arch == "resnet-cpu"
    assert json.loads((env["tmp"] / "big" / "recipe.json").read_text())["name"] == "cpu"


def test_a_flag_that_cpu_small_cannot_take_is_a_one_line_error_after_the_note(env, monkeypatch, capsys) -> None:
    monkeypatch.setattr("budgetnet.hardware.cpu_flags", lambda *_: frozenset({"avx2"}))
    argv = ["train", "--recipe", "cpu", "--low-res-epochs", "15", "--data", env["data"], "--out", "x", "--quiet"]
    assert main(argv) == 2  # 15 of cpu's 18 epochs would do; cpu-small has 14
    out, err = capsys.readouterr()
    assert "trains the cpu-small recipe" in out and err.count("\n") == 1 and "(14 epochs)" in err
    assert not (env["tmp"] / "x").exists()


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resume_matches_an_uninterrupted_run(env) -> None:
    flags = ["--quiet", "--epochs", "24", "--augment", "online", "--batch-size", "8", "--milestones", "12,18"]
    cmd = [sys.executable, "-m", "budgetnet", "train", "--arch", env["spec"], "--data", env["data"], "--out", "run", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    metrics = env["tmp"] / "run" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "budgetnet train --resume run" in err and "Traceback" not in err
    state = load_checkpoint(env["tmp"] / "run")
    assert 1 <= state.epoch < 24  # stopped early, mid-epoch or at a boundary

    assert main(["train", "--resume", "run", "--quiet"]) == 0
    assert main(["train", "--arch", env["spec"], "--data", env["data"], "--out", "straight", *flags]) == 0
    a, b = load_checkpoint(env["tmp"] / "straight").model, load_checkpoint(env["tmp"] / "run").model
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [json.loads(x)["epoch"] for x in metrics.read_text().splitlines()]
    assert epochs == list(range(1, 25))


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "positive integer"),
    (["train", "--augment", "magic"], "invalid choice"),
    (["train", "--lr", "fast"], "expected a number"),
    (["train", "--milestones", "15,x"], "comma-separated"),
    (["train", "--arch", "resnet18", "--data", "/nonexistent"], "over the budget"),
    (["train", "--arch", "nonet", "--data", "/nonexistent"], "unknown architecture"),
    (["train", "--resume", "somewhere", "--lr", "0.5"], "--resume continues a run"),
    (["train", "--data", "/nonexistent", "--arch", "approach-4", "--device", "tpu"], "device"),
    (["eval", "/nonexistent"], "does not exist"),
    (["plot", "/nonexistent"], "no metrics.jsonl"),
    (["reproduce", "--data", "/nonexistent", "--archs", "resnet18"], "over the budget"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, env, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_reproduce_writes_table_and_skips_finished_runs(env, monkeypatch, capsys) -> None:
    monkeypatch.setitem(PRESETS, "tiny", Preset("tiny", TINY_SPEC, 50.0, "a test preset"))
    argv = ["reproduce", "--data", env["data"], "--archs", "tiny", "--seeds", "2", "--epochs", "2",
            "--subset", "20", "--out", "rep", "--quiet"]
    assert main(argv) == 0
    rep = env["tmp"] / "rep"
    md, csv = (rep / "results.md").read_text(), (rep / "results.csv").read_text().splitlines()
    assert "SCALED DOWN" in md and "2 epochs instead of 50" in md and "| tiny | 1,506 |" in md
    assert csv[0].startswith("arch,params,macs,seeds,test_acc_mean,test_acc_std,paper_acc") and csv[1].startswith("tiny,1506,")
    assert json.loads((rep / "tiny" / "seed-0" / "recipe.json").read_text())["milestones"] == [1]  # 15/50 of 2
    assert (rep / "accuracy_vs_params.png").stat().st_size > 0
    before = (rep / "tiny" / "seed-1" / "checkpoints" / "last.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("finished earlier, skipped") == 2
    assert (rep / "tiny" / "seed-1" / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_reproduce_with_another_recipe_says_it_is_not_the_papers_regimen(env, monkeypatch, capsys) -> None:
    monkeypatch.setitem(PRESETS, "tiny", Preset("tiny", TINY_SPEC, 50.0, "a test preset"))
    argv = ["reproduce", "--recipe", "cpu", "--data", env["data"], "--archs", "tiny", "--epochs", "2",
            "--subset", "20", "--out", "rep", "--quiet"]
    assert main(argv) == 0
    rep = env["tmp"] / "rep"
    md = (rep / "results.md").read_text()
    assert "NOT THE PAPER'S 50-EPOCH REGIMEN (the cpu recipe)" in md and "Minutes per run" in md
    recipe = json.loads((rep / "tiny" / "seed-0" / "recipe.json").read_text())
    assert (recipe["name"], recipe["epochs"], recipe["augment"]) == ("cpu", 2, "shift")
    cpu = RECIPES["cpu"]
    assert recipe["warmup_epochs"] == cpu.warmup_epochs * 2 / cpu.epochs  # scaled with the epochs, as milestones
    assert recipe["precision"] in ("fp32", "bf16")  # auto, resolved once for every run
    capsys.readouterr()
    assert main(argv) == 0  # a re-run finds its runs' recorded recipes equal and skips them
    assert "finished earlier, skipped" in capsys.readouterr().out
