"""`budgetnet export`: dynamic batch, self-describing metadata, and equality with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from deploy_run import TINY_SPEC, private_cache, tiny_export, tiny_run  # noqa: F401  (fixtures)

from budgetnet.checkpoint import load_checkpoint
from budgetnet.data import load_cifar
from budgetnet.deploy.onnx_export import check_logits, onnx_logits, open_onnx
from budgetnet.deploy.rundata import reference_images


@pytest.fixture
def exported(tiny_export: tuple[Path, str]) -> tuple[Path, str]:
    """The default export of the tiny run and what the CLI printed."""
    return tiny_export


def test_check_uses_real_images_and_passes(exported: tuple[Path, str]) -> None:
    path, printed = exported
    assert path.is_file()
    assert "test images of" in printed and "RANDOM" not in printed and "OK" in printed
    diff = float(printed.split("logit = ")[1].split()[0])
    tolerance = float(printed.split("(tolerance ")[1].split(",")[0])
    assert diff <= tolerance


def test_metadata_describes_the_model(exported: tuple[Path, str], tiny_run: Path) -> None:
    props = {p.key: p.value for p in onnx.load(str(exported[0])).metadata_props}
    data = json.loads((tiny_run / "data.json").read_text())
    assert json.loads(props["budgetnet.classes"]) == data["classes"]
    assert json.loads(props["budgetnet.mean"]) == pytest.approx(data["mean"])
    assert json.loads(props["budgetnet.std"]) == pytest.approx(data["std"])
    assert json.loads(props["budgetnet.spec"]) == TINY_SPEC.to_dict()
    assert json.loads(props["budgetnet.recipe"]) == json.loads((tiny_run / "recipe.json").read_text())
    assert props["budgetnet.version"] and props["budgetnet.format"] == "2" and props["budgetnet.precision"] == "fp32"


def test_round_trip_equals_pytorch_at_any_batch_size(exported: tuple[Path, str], tiny_run: Path) -> None:
    state = load_checkpoint(tiny_run)
    session, _ = open_onnx(exported[0])
    test_images = load_cifar(state.data.source_path).test_images
    for batch in (1, 7, 300):  # the batch dimension is dynamic
        assert check_logits(state, session, test_images[:batch]).ok
    assert onnx_logits(session, np.zeros((3, 3, 32, 32), np.uint8)).shape == (3, 10)
    with pytest.raises(TypeError, match="uint8"):
        onnx_logits(session, np.zeros((3, 3, 32, 32), np.float32))


def test_the_graph_takes_raw_pixels_and_normalises_them_as_training_did(exported: tuple[Path, str],
                                                                        tiny_run: Path) -> None:
    import torch

    from budgetnet.checkpoint import model_from_checkpoint
    from budgetnet.data.normalize import normalize

    state = load_checkpoint(tiny_run)
    session, _ = open_onnx(exported[0])
    (graph_input,) = session.get_inputs()
    assert graph_input.type == "tensor(uint8)" and graph_input.shape[1:] == [3, 32, 32]
    images = load_cifar(state.data.source_path).test_images[:64]
    with torch.no_grad():  # the network alone, fed the way the training loop feeds it
        trained_path = model_from_checkpoint(state)(normalize(torch.from_numpy(images), state.data.mean,
                                                              state.data.std)).numpy()
    np.testing.assert_allclose(onnx_logits(session, images), trained_path, rtol=1e-4, atol=1e-4)


def test_random_fallback_is_labelled(tiny_run: Path, tmp_path: Path) -> None:
    reference = reference_images(load_checkpoint(tiny_run), tmp_path / "nothing", count=5)
    assert not reference.real and reference.images.shape == (5, 3, 32, 32)
    assert "RANDOM noise images, not real ones" in reference.description and "nothing" in reference.description
    real = reference_images(load_checkpoint(tiny_run), None, count=5)
    assert real.real and "the first 5 test images of" in real.description
