"""Deploy on real training output: train -> export -> quantize -> predict -> card through the CLI, and an ONNX
round trip of every registered preset (uint8 pixels in, the same logits as PyTorch)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from deploy_run import CLASSES, TINY_SPEC, private_cache, synthetic_images, write_png_dataset  # noqa: F401

from budgetnet.cli.main import main
from budgetnet.presets import PRESETS
from budgetnet.runrecord import Checkpoint


def _run(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0, argv
    return out.getvalue()


def test_train_export_quantize_predict_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETNET_CACHE", str(tmp_path / "cache"))
    data, run = tmp_path / "data", tmp_path / "run"
    write_png_dataset(data, train=400, test=100)
    TINY_SPEC.save(tmp_path / "tiny.json")
    _run("train", "--arch", str(tmp_path / "tiny.json"), "--data", str(data), "--out", str(run), "--quiet",
         "--epochs", "2", "--milestones", "none", "--augment", "none", "--batch-size", "32", "--lr", "0.05")
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["test_acc"] > 0.5  # it learned the colours (chance: 0.1)

    assert "OK" in _run("export", str(run), "--format", "onnx")
    _run("quantize", str(run), "--calib", "64", "--seconds", "0.1")
    report = json.loads((run / "export" / "quantize.json").read_text())

    files = sorted((data / "test").rglob("*.png"))[:30]
    answers = {}
    for model in (run, run / "export" / "model.onnx", run / "export" / "model.int8.onnx"):
        lines = _run("predict", str(model), *map(str, files), "--json").splitlines()
        answers[model.name] = [json.loads(line)["top"][0]["class"] for line in lines]
    truth = [path.parent.name for path in files]
    assert answers["run"] == answers["model.onnx"]  # the same network, the same preprocessing
    assert np.mean([a == b for a, b in zip(answers["run"], answers["model.int8.onnx"])]) >= 0.9
    assert np.mean([a == b for a, b in zip(answers["run"], truth)]) > 0.5

    _run("card", str(run))
    card = (run / "MODEL_CARD.md").read_text()
    assert f"{100 * metrics[-1]['test_acc']:.2f}%" in card  # the run's own final figure, not retyped
    assert f"{100 * report['int8']['test_acc']:.2f}%" in card
    assert "uint8 RGB pixels" in card and "budgetnet train" in card


def _checkpoint(name: str) -> Checkpoint:
    import torch

    from budgetnet.model import build_model

    torch.manual_seed(0)
    spec = PRESETS[name].spec
    data = {"classes": list(CLASSES), "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26], "source": {}}
    return Checkpoint.from_state({"spec": spec.to_dict(), "model": build_model(spec).eval().state_dict(),
                                  "arch": name, "data": data, "epoch": 0})


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_exports_to_onnx_and_matches_pytorch(name: str, tmp_path: Path) -> None:
    from budgetnet.deploy.onnx_export import check_logits, export_onnx, open_onnx

    checkpoint = _checkpoint(name)
    path = export_onnx(checkpoint, tmp_path / f"{name}.onnx", "test")
    session, meta = open_onnx(path)
    assert meta["arch"] == name and session.get_inputs()[0].type == "tensor(uint8)"
    images, _ = synthetic_images(8, seed=3)
    check = check_logits(checkpoint, session, images)
    assert check.ok, check.describe()
