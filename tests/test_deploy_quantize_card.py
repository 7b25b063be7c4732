"""int8 quantization of a tiny trained model, and a model card that carries the measured numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from deploy_run import private_cache, tiny_export, tiny_run  # noqa: F401  (fixtures)

import budgetnet.deploy.quantize as quantize_module
from budgetnet.checkpoint import load_checkpoint, save_checkpoint
from budgetnet.cli.main import main
from budgetnet.data import load_cifar
from budgetnet.deploy.predict import load_classifier


@pytest.fixture(scope="module")
def quantized(tiny_run: Path, tiny_export: tuple[Path, str]) -> dict:
    """Run `budgetnet quantize` once on the tiny run, recording the images it calibrated on."""
    seen: list[np.ndarray] = []
    real = quantize_module.quantize_onnx

    def spy(fp32_path, out, calib_images):  # noqa: ANN001, ANN202
        seen.append(calib_images.copy())
        return real(fp32_path, out, calib_images)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(quantize_module, "quantize_onnx", spy)
        assert main(["quantize", str(tiny_run), "--calib", "64", "--seconds", "0.2"]) == 0
    report = json.loads((tiny_run / "export" / "quantize.json").read_text())
    return {"report": report, "calib": seen[0]}


def test_int8_is_smaller_runs_and_mostly_agrees(quantized: dict, tiny_run: Path) -> None:
    fp32, int8 = tiny_run / "export" / "model.onnx", tiny_run / "export" / "model.int8.onnx"
    assert int8.stat().st_size < fp32.stat().st_size
    report = quantized["report"]
    assert report["fp32"]["bytes"] == fp32.stat().st_size and report["int8"]["bytes"] == int8.stat().st_size
    data = load_cifar(json.loads((tiny_run / "data.json").read_text())["source"]["path"])
    a, b = load_classifier(fp32), load_classifier(int8)
    agree = (a.logits(data.test_images).argmax(1) == b.logits(data.test_images).argmax(1)).mean()
    assert agree >= 0.9
    assert report["top1_agreement"] == pytest.approx(agree)
    assert report["test_images"] == len(data.test_images)
    assert report["fp32"]["test_acc"] >= 0.5  # the tiny model did learn the synthetic classes (chance: 0.1)
    for precision in ("fp32", "int8"):
        assert set(report[precision]["images_per_s"]) == {"1", "256"}
        assert all(v > 0 for v in report[precision]["images_per_s"].values())


def test_calibration_uses_training_images_only(quantized: dict, tiny_run: Path) -> None:
    data = load_cifar(json.loads((tiny_run / "data.json").read_text())["source"]["path"])
    calib = quantized["calib"]
    assert len(calib) == 64
    train = {img.tobytes() for img in data.train_images}
    test = {img.tobytes() for img in data.test_images}
    assert all(img.tobytes() in train and img.tobytes() not in test for img in calib)
    assert quantized["report"]["calibration"] == {"images": 64, "split": "train", "seed": 0, "method": "MinMax"}


def test_card_carries_the_measured_numbers(quantized: dict, tiny_run: Path, capsys: pytest.CaptureFixture) -> None:
    out = tiny_run / "card" / "CARD.md"
    assert main(["card", str(tiny_run), "--out", str(out)]) == 0
    assert "missing: Per-class accuracy" in capsys.readouterr().out  # no eval.json in the fixture
    card = out.read_text()
    report = quantized["report"]
    last = json.loads((tiny_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert f"**{100 * last['test_acc']:.2f}%**" in card
    assert "Parameters: 1,506" in card and "MACs per 32x32 image: 1,400,912" in card
    assert f"| file bytes | {report['fp32']['bytes']:,} | {report['int8']['bytes']:,} |" in card
    assert f"{report['fp32']['images_per_s']['256']:,.0f}" in card
    from budgetnet.deploy.onnx_export import file_sha256

    for rel in ("checkpoints/last.pt", "export/model.onnx", "export/model.int8.onnx"):
        assert file_sha256(tiny_run / rel) in card
    assert "budgetnet train --arch" in card and "--lr 0.05" in card and f"budgetnet eval {tiny_run}" in card
    assert "lossy JPEG copy" not in card


def test_card_uses_eval_json_and_flags_jpeg_data(quantized: dict, tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    per_class = {c: 0.5 + i / 100 for i, c in enumerate(json.loads((run / "data.json").read_text())["classes"])}
    evaluation = {"epoch": 1, "images": 300, "tta": False, "accuracy": 0.8123, "per_class_accuracy": per_class}
    (run / "eval.json").write_text(json.dumps(evaluation))
    (run / "confusion.png").write_bytes(b"png")
    state = load_checkpoint(run).to_state()  # the card reads the run's data from its checkpoint
    state["data"]["source"]["lossy"] = True
    save_checkpoint(run / "checkpoints" / "last.pt", state)
    assert main(["card", str(run)]) == 0
    card = (run / "MODEL_CARD.md").read_text()
    assert "81.23%" in card and "| truck | 59.00% |" in card and "![confusion matrix](confusion.png)" in card
    assert "**Trained on the lossy JPEG copy" in card


def test_card_of_an_unfinished_run_is_one_line(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "metrics.jsonl").write_text("")
    assert main(["card", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has not finished an epoch" in err
    assert main(["card", str(tmp_path / "absent")]) == 2


def test_reproduce_command_parses_with_the_real_train_cli(tmp_path: Path) -> None:
    import shlex

    from budgetnet.cli.main import build_parser
    from budgetnet.deploy.card import train_command
    from budgetnet.train.recipe import Recipe

    recipe = Recipe().replace(nesterov=True, milestones=(), subset=100).to_dict()
    argv = shlex.split(train_command(tmp_path / "run", "approach-2a", recipe, "data/cifar"))[1:]
    args = build_parser().parse_args(argv)
    assert args.nesterov is True and args.tta is False and args.milestones == () and args.subset == 100
    assert args.arch == "approach-2a" and args.lr == recipe["lr"] and args.out == str(tmp_path / "run") + "-reproduced"


def test_accuracy_text_names_the_views_it_averaged() -> None:
    from budgetnet.deploy.card import views_text

    six = {"test_acc": 0.9401, "test_acc_flip": 0.938, "test_acc_single_view": 0.934, "val_acc": 0.9}
    assert views_text(six, shift=1) == "94.01% with TTA flip + +-1 px (6 views), 93.80% flip pair, 93.40% single view"
    assert views_text(six, shift=2).startswith("94.01% with TTA flip + +-2 px (6 views), ")
    assert views_text(six).startswith("94.01% with 6-view TTA, 93.80% flip pair")  # a card without its recipe
    assert views_text({"test_acc": 0.9372, "test_acc_single_view": 0.9337}) == "93.72% with flip TTA, 93.37% single view"
    assert views_text(six, "val", 1) == "90.00%"
