"""`budgetnet search` on one machine: the space fills the budget, studies continue, results and bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from budgetnet.cli.main import main  # noqa: E402
from budgetnet.counts import count_macs, count_params  # noqa: E402
from budgetnet.presets import PAPER_APPROACHES, get_preset  # noqa: E402
from budgetnet.search.space import Limits, SpecRejected, draw_shape, fill, scale_to_fit, smallest_params  # noqa: E402
from budgetnet.spec import ResNetSpec  # noqa: E402
from data_fixtures import binary_records  # noqa: E402
from train_fixtures import fake_cifar, write_binary_cifar  # noqa: E402

TINY = ["--budget", "12k", "--proxy-epochs", "2", "--proxy-subset", "40", "--val-split", "10", "--no-references"]


def _draws(limits: Limits, count: int) -> tuple[list[ResNetSpec], int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    specs, rejected = [], 0
    for _ in range(count):
        trial = study.ask()
        try:
            specs.append(fill(draw_shape(trial), limits))
        except SpecRejected:
            rejected += 1
        study.tell(trial, 0.0)
    return specs, rejected


def test_drawn_specs_fill_the_budget_without_exceeding_it() -> None:
    limits = Limits(300_000)
    specs, rejected = _draws(limits, 150)
    assert rejected < 0.15 * 150  # only the deepest 5x5 shapes with 2x growth cannot fit 300k at 8 channels
    sizes = sorted(count_params(s) for s in specs)
    assert sizes[-1] <= 300_000
    assert sizes[len(sizes) // 2] >= 0.85 * 300_000, "widths are scaled up until the budget is nearly full"
    assert len({s.to_json() for s in specs}) > 100  # the space is explored, not one point


def test_mac_limit_is_kept_and_shapes_that_cannot_fit_are_rejected() -> None:
    limits = Limits(300_000, max_macs=5_000_000)
    specs, rejected = _draws(limits, 80)
    assert all(count_macs(s) <= 5_000_000 and count_params(s) <= 300_000 for s in specs)
    assert rejected > 0  # deep 4-stage shapes cost more than 5M MACs even at 8 channels


def test_presets_scale_to_a_small_budget_keeping_their_shape() -> None:
    for name in PAPER_APPROACHES:
        original = get_preset(name).spec
        scaled = scale_to_fit(original, Limits(300_000))
        assert count_params(scaled) <= 300_000
        assert scaled.depths == original.depths and scaled.conv1_kernel == original.conv1_kernel
        assert scaled.skip_kernel == original.skip_kernel
    assert 1_000 < smallest_params(Limits(300_000)) < 12_000  # the tiny searches below use a 12k budget


@pytest.fixture()
def data(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("BUDGETNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return str(write_binary_cifar(tmp_path / "cifar"))


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_search_trains_trials_writes_results_and_continues(data, tmp_path, capsys) -> None:
    out = tmp_path / "s1"
    assert main(["search", "--data", data, "--out", str(out), "--trials", "2", *TINY]) == 0
    first = _rows(out)
    assert len(first) == 2
    for row in first:
        spec = ResNetSpec.from_dict(json.loads(row["spec"]))
        assert int(row["params"]) == count_params(spec) <= 12_000
        assert int(row["macs"]) == count_macs(spec)
        assert row["state"] in ("complete", "pruned") and 0 <= float(row["val_acc"]) <= 1
    best = ResNetSpec.load(out / "best.json")
    assert count_params(best) <= 12_000
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"

    assert main(["search", "--data", data, "--out", str(out), "--trials", "1", *TINY]) == 0
    again = _rows(out)
    assert len(again) == 3 and again[:2] == first  # continued, nothing restarted or lost
    capsys.readouterr()
    assert main(["search", "show", str(out), "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["trials"] == 3 and board["best"][0]["val_acc"] == max(
        float(r["val_acc"]) for r in again if r["state"] == "complete")

    # the winner is an ordinary spec: arch show and train accept it
    assert main(["arch", "show", str(out / "best.json")]) == 0
    assert main(["train", "--arch", str(out / "best.json"), "--data", data, "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--batch-size", "16", "--quiet"]) == 0


def test_references_are_the_presets_scaled_to_the_budget(data, tmp_path, capsys) -> None:
    out = tmp_path / "refs"
    args = ["search", "--data", data, "--out", str(out), "--trials", "1", "--budget", "20k", "--proxy-epochs", "1",
            "--proxy-subset", "30", "--val-split", "10"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    fitted = {p.stem for p in (out / "references").glob("*.json")}
    assert len(fitted) >= 2
    for name in PAPER_APPROACHES:
        if name not in fitted:  # too deep or too wide-kerneled for 20k even at 8 channels
            assert f"reference {name}: skipped" in printed
            continue
        spec = ResNetSpec.load(out / "references" / f"{name}.json")
        assert count_params(spec) <= 20_000 and spec.depths == get_preset(name).spec.depths
        assert f"reference {name} scaled to" in printed
    assert main(args) == 0
    assert "scaled to" not in capsys.readouterr().out  # continuing does not train the references again


def test_the_test_split_does_not_change_a_search(data, tmp_path) -> None:
    other = tmp_path / "cifar-other-test"
    write_binary_cifar(other)
    fake = fake_cifar(20, 20, seed=9)  # the same training images, other test images
    (other / "test_batch.bin").write_bytes(binary_records(fake.test_images, fake.test_labels))
    results = []
    for name, where in (("a", data), ("b", str(other))):
        assert main(["search", "--data", where, "--out", str(tmp_path / name), "--trials", "2", *TINY]) == 0
        results.append([(r["spec"], r["val_acc"]) for r in _rows(tmp_path / name)])
    assert results[0] == results[1]


def _exit_code(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as e:  # argparse rejects a bad value before the verb runs
        return int(e.code)


@pytest.mark.parametrize(("extra", "message"), [
    (["--budget", "500"], "too small"),
    (["--trials", "0"], "at least 1"),
    (["--budget", "lots"], "positive count"),
    (["--time", "soon"], "duration"),
    (["--proxy-subset", "45"], "more than the 50 training images"),
])
def test_bad_search_input_is_one_line_and_exit_2(data, tmp_path, capsys, extra, message) -> None:
    assert _exit_code(["search", "--data", data, "--out", str(tmp_path / "bad"), "--trials", "1", *TINY, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad" / "study.db").exists()  # refused before a study was made


def test_a_directory_of_another_search_is_refused(data, tmp_path, capsys) -> None:
    out = tmp_path / "s"
    assert main(["search", "--data", data, "--out", str(out), "--trials", "1", *TINY]) == 0
    capsys.readouterr()
    changed = [a if a != "12k" else "14k" for a in TINY]
    assert main(["search", "--data", data, "--out", str(out), "--trials", "1", *changed]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "budget: 12000 -> 14000" in err


def test_an_unreachable_database_is_one_line(data, tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "budgetnet", "search", "--data", data, "--out", str(tmp_path / "pg"),
                             "--trials", "1", *TINY, "--storage", "postgresql://nobody:secret@127.0.0.1:1/none"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "cannot reach the database at postgresql+psycopg://nobody:***@127.0.0.1:1/none" in result.stderr
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("limit", "column"), [(["--max-macs", "6M"], "macs"),
                                               (["--max-latency-ms", "500", "--latency-batch", "2"], "latency_ms")])
def test_a_second_limit_makes_a_two_objective_search(data, tmp_path, capsys, limit, column) -> None:
    import optuna

    # At 12k params about 6% of drawn shapes fit 6M MACs (1 in 300 fit 3M, which let 200 rejections in a row
    # end the search by chance): the limit binds for some shapes without emptying the space.
    out = tmp_path / column
    assert main(["search", "--data", data, "--out", str(out), "--trials", "2", *TINY, *limit]) == 0
    rows = _rows(out)
    assert len(rows) == 2 and all(r["state"] == "complete" for r in rows)  # no pruning with two objectives
    if column == "macs":
        assert all(int(r["macs"]) <= 6_000_000 for r in rows)
    else:
        assert all(0 < float(r["latency_ms"]) <= 500 for r in rows)
    study = optuna.load_study(study_name=column, storage=f"sqlite:///{out / 'study.db'}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    for trial in study.trials:
        if trial.state.name == "COMPLETE":
            assert trial.values[1] == pytest.approx(float(next(r[column] for r in rows
                                                               if int(r["number"]) == trial.number)))
    capsys.readouterr()
    assert main(["search", "show", str(out), "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["objective"] == ["val_acc", column] and board["pareto"]


def test_the_proxy_trains_at_the_precision_train_would_choose() -> None:
    import torch

    from budgetnet.search.proxy import Proxy
    from budgetnet.train.precision import choose_precision

    recipe = Proxy(epochs=3, subset=1000, val_split=200).recipe(torch.device("cpu"))
    assert recipe.precision == choose_precision("auto", torch.device("cpu"))[0] != "auto"
    assert (recipe.subset, recipe.val_split, recipe.ema_decay, recipe.tta) == (1200, 200, 0.0, False)
    assert (recipe.lookahead, recipe.ghost_batch) == (0, 0)  # the cpu recipe's Lookahead and ghost BN stay out
