"""Files that are not budgetnet checkpoints or exports are refused in one line, exit 2, running nothing."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import onnx
import pytest
import torch
from deploy_run import private_cache, tiny_export, tiny_run  # noqa: F401  (fixtures)

from budgetnet.checkpoint import load_checkpoint, save_checkpoint
from budgetnet.cli.main import main
from budgetnet.deploy.onnx_export import set_metadata


class Payload:
    """Unpickling this would run a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """One valid PNG to classify."""
    from PIL import Image

    path = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(path)
    return path


def refused(capsys: pytest.CaptureFixture, argv: list, expected: str) -> None:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err


def test_random_bytes_checkpoint(tmp_path: Path, image: Path, capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(os.urandom(4096))
    refused(capsys, ["predict", model, image], "not a readable budgetnet checkpoint")
    refused(capsys, ["export", model, "--out", tmp_path / "m.onnx"], "not a readable budgetnet checkpoint")


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_code_execution_pickle_is_refused_and_not_run(
    writer: str, tmp_path: Path, image: Path, capsys: pytest.CaptureFixture
) -> None:
    marker, model = tmp_path / "pwned", tmp_path / "evil.pt"
    payload = {"kind": "budgetnet-checkpoint", "version": 1, "spec": Payload(marker)}
    if writer == "torch.save":
        torch.save(payload, model)
    else:
        model.write_bytes(pickle.dumps(payload))
    refused(capsys, ["predict", model, image], "not a readable budgetnet checkpoint")
    assert not marker.exists()


def test_newer_checkpoint_format_says_upgrade(tiny_run: Path, tmp_path: Path, image: Path, capsys) -> None:
    newer = tmp_path / "newer.pt"
    save_checkpoint(newer, load_checkpoint(tiny_run).to_state())
    raw = torch.load(newer, weights_only=True)
    raw["version"] = 99
    torch.save(raw, newer)
    refused(capsys, ["predict", newer, image], "newer than this budgetnet reads")


def test_foreign_and_damaged_onnx(
    tiny_export: tuple[Path, str], tmp_path: Path, image: Path, capsys: pytest.CaptureFixture
) -> None:
    proto = onnx.load(str(tiny_export[0]))

    foreign = onnx.load(str(tiny_export[0]))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    refused(capsys, ["predict", tmp_path / "foreign.onnx", image], "not a budgetnet export")

    set_metadata(proto, {"budgetnet.format": "99"})
    onnx.save(proto, str(tmp_path / "newer.onnx"))
    refused(capsys, ["predict", tmp_path / "newer.onnx", image], "newer than this budgetnet reads")

    set_metadata(proto, {"budgetnet.format": "1", "budgetnet.version": "0.1.0"})
    onnx.save(proto, str(tmp_path / "older.onnx"))
    refused(capsys, ["predict", tmp_path / "older.onnx", image],
            "has export format 1 (budgetnet 0.1.0), which takes pre-normalised float input")

    (tmp_path / "noise.onnx").write_bytes(os.urandom(2048))
    refused(capsys, ["predict", tmp_path / "noise.onnx", image], "not a readable ONNX model")
    refused(capsys, ["predict", tmp_path / "absent.onnx", image], "does not exist")


def test_directory_that_is_not_a_run(tmp_path: Path, image: Path, capsys: pytest.CaptureFixture) -> None:
    refused(capsys, ["predict", tmp_path, image], "holds no checkpoints/last.pt")
    refused(capsys, ["quantize", tmp_path], "holds no checkpoints/last.pt")
