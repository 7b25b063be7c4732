"""`budgetnet predict` on real JPEG files, generated PNGs of other sizes, a corrupt file and a folder."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from deploy_run import CLASSES, private_cache, synthetic_images, tiny_export, tiny_run  # noqa: F401  (fixtures)
from PIL import Image

from budgetnet.cli.main import main


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PNGs of known synthetic classes (one 32x32, one 50x40 RGBA, one greyscale) and a corrupt file."""
    folder = tmp_path_factory.mktemp("images")
    images, labels = synthetic_images(3, seed=5)
    Image.fromarray(images[0].transpose(1, 2, 0)).save(folder / f"a_{CLASSES[labels[0]]}.png")
    big = Image.fromarray(images[1].transpose(1, 2, 0)).resize((50, 40)).convert("RGBA")
    big.save(folder / f"b_{CLASSES[labels[1]]}.png")
    Image.fromarray(images[2][0]).save(folder / "c_grey.png")
    (folder / "d_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (folder / "notes.txt").write_text("not an image, and not a PNG/JPEG name: skipped inside folders")
    return folder


@pytest.fixture
def jpeg_files(shared_dir: Path, tmp_path: Path) -> list[Path]:
    """Three real JPEG files from the shared CIFAR-10 JPEG copy."""
    archive = shared_dir / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is not present")
    folder, files = tmp_path, []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                target = folder / member.name.replace("/", "_")
                target.write_bytes(tar.extractfile(member).read())
                files.append(target)
                if len(files) == 3:
                    break
    return files


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_predicts_real_jpegs(tiny_run: Path, jpeg_files: list[Path], capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "predict", tiny_run, *jpeg_files, "--json", "--top-k", "4")
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == [str(p) for p in jpeg_files]
    for row in rows:
        probs = [t["probability"] for t in row["top"]]
        assert len(probs) == 4 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
        assert {t["class"] for t in row["top"]} <= set(CLASSES)


def test_folder_with_corrupt_file(tiny_run: Path, image_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "predict", tiny_run, image_dir, "--batch-size", "2")
    assert code == 1  # one file failed
    assert err.count("\n") == 1 and "d_corrupt.jpg" in err and "Traceback" not in err
    lines = out.splitlines()
    names = {Path(line.split()[0]).name: line.split()[1] for line in lines}
    assert list(names) == sorted(p.name for p in image_dir.glob("[abc]_*.png"))  # sorted, notes.txt skipped
    # the synthetic classes are encoded by colour, which the trained model learnt; resizing keeps colour
    for name, top1 in names.items():
        if not name.startswith("c_"):
            assert name.split("_", 1)[1].removesuffix(".png") == top1


def test_batch_size_does_not_change_results(tiny_run: Path, image_dir: Path, capsys: pytest.CaptureFixture) -> None:
    _, one, _ = run_cli(capsys, "predict", tiny_run, image_dir, "--json", "--batch-size", "1")
    _, many, _ = run_cli(capsys, "predict", tiny_run, image_dir, "--json")
    assert [json.loads(a)["top"][0]["class"] for a in one.splitlines()] == [
        json.loads(b)["top"][0]["class"] for b in many.splitlines()]
    a = np.array([[t["probability"] for t in json.loads(x)["top"]] for x in one.splitlines()])
    b = np.array([[t["probability"] for t in json.loads(x)["top"]] for x in many.splitlines()])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_checkpoint_and_onnx_agree(
    tiny_run: Path, tiny_export: tuple[Path, str], image_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    onnx_path = tiny_export[0]
    _, from_pt, _ = run_cli(capsys, "predict", tiny_run / "checkpoints" / "last.pt", image_dir, "--json")
    _, from_onnx, _ = run_cli(capsys, "predict", onnx_path, image_dir, "--json")
    pt = [json.loads(line) for line in from_pt.splitlines()]
    ox = [json.loads(line) for line in from_onnx.splitlines()]
    assert [r["top"][0]["class"] for r in pt] == [r["top"][0]["class"] for r in ox]
    for a, b in zip(pt, ox):
        probs_a, probs_b = ([t["probability"] for t in r["top"]] for r in (a, b))
        np.testing.assert_allclose(probs_a, probs_b, atol=1e-4)


def test_missing_image_is_one_error(tiny_run: Path, image_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "predict", tiny_run, image_dir / "a_missing.png", next(image_dir.glob("a_*.png")))
    assert code == 1 and "a_missing.png" in err and err.count("\n") == 1
    assert len(out.splitlines()) == 1
