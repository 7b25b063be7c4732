"""Checkpoints and ONNX exports: a damaged but tagged file is one line, an ONNX file whose shapes do not
match its metadata is refused, and export's onnxruntime-vs-PyTorch check passes on any float32 kernels
yet fails on a real mismatch."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from deploy_run import private_cache, tiny_export, tiny_run  # noqa: F401  (fixtures)
from hostile import fails_in_one_line, fill_up, small_tmpfs
from PIL import Image

from budgetnet.checkpoint import load_checkpoint, save_checkpoint
from budgetnet.cli.main import RUN_FAILED, USAGE_ERROR, main
from budgetnet.deploy.onnx_export import RELATIVE_TOLERANCE, check_logits, compare_logits, open_onnx, set_metadata
from budgetnet.deploy.rundata import reference_images
from budgetnet.runrecord import Checkpoint


class Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("true",))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(path)
    return path


def _damaged(tiny_run: Path, where: Path, drop: str | None = None, **changes: object) -> Path:
    """A copy of the tiny run whose checkpoint lacks `drop` or has `changes`; returns the run dir."""
    shutil.copytree(tiny_run, where, ignore=shutil.ignore_patterns("export"))
    state = {k: v for k, v in load_checkpoint(tiny_run).to_state().items() if k != drop}
    save_checkpoint(where / "checkpoints" / "last.pt", {**state, **changes})
    return where


@pytest.mark.parametrize("drop, changes, expected", [
    ("data", {}, "lacks 'data'"),
    (None, {"data": {"classes": ["a"] * 10}}, "its 'data' entry lacks classes, mean, std"),
    (None, {"data": {"classes": "airplane", "mean": [0.5] * 3, "std": [0.2] * 3}}, "needs a list of class names"),
    (None, {"model": {"conv.weight": torch.zeros(1)}}, "weights do not match its spec"),
])
def test_a_damaged_tagged_checkpoint_is_one_line_in_every_verb(drop, changes, expected, tiny_run, tmp_path, image,
                                                                 capsys) -> None:
    run = _damaged(tiny_run, tmp_path / "run", drop, **changes)
    for argv in (["predict", run, image], ["eval", run], ["export", run, "--out", tmp_path / "m.onnx"]):
        fails_in_one_line(capsys, argv, USAGE_ERROR, expected)


@pytest.mark.parametrize("drop", ["data", "optimizer", "rng"])
def test_resume_of_a_checkpoint_missing_an_entry_is_one_line(drop: str, tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = _damaged(tiny_run, tmp_path / "run", drop)
    fails_in_one_line(capsys, ["train", "--resume", run], USAGE_ERROR, f"lacks '{drop}'")


def test_the_unsafe_checkpoint_refusal_never_advises_weights_only_false(tmp_path: Path, image: Path, capsys) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "budgetnet-checkpoint", "version": 1, "spec": Payload()}, evil)
    err = fails_in_one_line(capsys, ["predict", evil, image], USAGE_ERROR, "refused unread")
    assert "weights_only" not in err and "will likely succeed" not in err


def _foreign_onnx(path: Path, props: dict[str, str], side: int, classes: int, pixels: str = "uint8") -> Path:
    """A valid ONNX model (mean over pixels, then a linear layer) carrying a real export's metadata."""
    from onnx import TensorProto, helper, numpy_helper

    kind = TensorProto.UINT8 if pixels == "uint8" else TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("input", kind, ["N", 3, side, side])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])]
    weight = numpy_helper.from_array(np.ones((3, classes), np.float32), "w")
    nodes = [helper.make_node("Cast", ["input"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["logits"])]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, [weight]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    set_metadata(model, props)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("side, classes, pixels, expected", [
    (64, 10, "uint8", "expected one uint8 input (N, 3, 32, 32), got tensor(uint8) (N, 3, 64, 64)"),
    (32, 10, "float", "expected one uint8 input (N, 3, 32, 32), got tensor(float) (N, 3, 32, 32)"),
    (32, 5, "uint8", "10 class names but the output is (N, 5)"),
])
def test_an_onnx_file_whose_shapes_do_not_match_its_metadata(side, classes, pixels, expected, tiny_export, tmp_path,
                                                             image, capsys) -> None:
    props = {p.key: p.value for p in onnx.load(str(tiny_export[0])).metadata_props if p.key.startswith("budgetnet.")}
    bad = _foreign_onnx(tmp_path / "bad.onnx", props, side, classes, pixels)
    fails_in_one_line(capsys, ["predict", bad, image], USAGE_ERROR, expected)
    assert main(["predict", str(_foreign_onnx(tmp_path / "fits.onnx", props, 32, 10)), str(image)]) == 0


def _perturbed(state: Checkpoint, relative: float) -> Checkpoint:
    """The checkpoint with every weight of its first convolution scaled by (1 + relative)."""
    model = dict(state.model)
    key = next(k for k, v in model.items() if v.ndim == 4)
    model[key] = model[key] * (1 + relative)
    return dataclasses.replace(state, model=model)


def test_the_export_check_fails_on_a_perturbed_model(tiny_run: Path, tiny_export: tuple[Path, str]) -> None:
    state = load_checkpoint(tiny_run)
    session, _ = open_onnx(tiny_export[0])
    images = reference_images(state, None).images
    assert check_logits(state, session, images).ok
    assert check_logits(_perturbed(state, 1e-6), session, images).ok  # rounding-sized: still the same model
    wrong = check_logits(_perturbed(state, 0.03), session, images)  # a 3% wrong layer: a different model
    assert not wrong.ok and wrong.max_diff > wrong.tolerance


@pytest.mark.parametrize("optimization", ["ORT_DISABLE_ALL", "ORT_ENABLE_ALL"])
@pytest.mark.parametrize("onednn", [True, False])
def test_the_export_check_passes_on_other_kernel_paths(optimization, onednn, tiny_run, tiny_export) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, optimization)  # fused or plain kernels
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(tiny_export[0]), options, providers=["CPUExecutionProvider"])
    state = load_checkpoint(tiny_run)
    with torch.backends.mkldnn.flags(enabled=onednn):  # PyTorch's oneDNN convolutions or its native ones
        assert check_logits(state, session, reference_images(state, None).images).ok


def test_the_tolerance_follows_the_logit_scale() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (256, 10))
    logits[np.arange(256), rng.integers(0, 10, 256)] += 12  # a trained model's clear winners
    avx2 = logits + rng.uniform(-1.22e-3, 1.22e-3, logits.shape)  # what AMD EPYC's AVX2 kernels differ by
    check = compare_logits(logits, avx2)
    assert check.ok and check.max_diff > 1e-4  # the old absolute 1e-4 failed every such CPU
    assert check.tolerance == pytest.approx(RELATIVE_TOLERANCE * np.abs(logits).max())
    assert not compare_logits(logits, logits * 1.02).ok


def test_only_a_near_tie_may_change_its_top_class() -> None:
    logits = np.array([[5.0, 5.0 + 1e-6, -3.0], [9.0, 1.0, -3.0]])
    near_tie = logits.copy()
    near_tie[0, 0] += 2e-6  # within float32 noise: the top class may swap
    check = compare_logits(logits, near_tie)
    assert check.ok and check.top1_same == 1 and check.clear_flips == 0
    flipped = logits.copy()
    flipped[1] = [1.0, 9.0, -3.0]
    assert compare_logits(logits, flipped).clear_flips == 1 and not compare_logits(logits, flipped).ok


def test_export_exits_1_on_a_mismatch(tiny_run: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import budgetnet.deploy.onnx_export as onnx_export

    real = onnx_export.check_logits
    monkeypatch.setattr(onnx_export, "check_logits", lambda state, session, images: real(
        _perturbed(state, 0.03), session, images))
    assert main(["export", str(tiny_run), "--out", str(tmp_path / "m.onnx")]) == RUN_FAILED
    assert "MISMATCH" in capsys.readouterr().out


def test_export_onto_a_full_disk_is_one_line(tiny_run: Path, tmp_path: Path, capsys) -> None:
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        fill_up(disk / "filler")
        out = disk / "model.onnx"
        fails_in_one_line(capsys, ["export", tiny_run, "--out", out], RUN_FAILED, f"disk full: {out}")
        assert [p.name for p in disk.iterdir()] == ["filler"]
