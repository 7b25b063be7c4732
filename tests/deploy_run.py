"""A tiny run directory trained by `budgetnet train`, so deploy tests consume real training output fast.

The data is synthetic and learnable: class c is noise around its own colour, so a 1-block,
8-channel model reaches high accuracy in a few dozen steps and int8 agreement is meaningful.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path

import numpy as np
import pytest

from budgetnet.spec import ResNetSpec, StageSpec

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# well-separated colours, one per class, so the task is easy and a tiny model learns it fast
PALETTE = np.array([(230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30), (230, 30, 230),
                    (30, 230, 230), (240, 240, 240), (20, 20, 20), (128, 128, 128), (240, 140, 20)])
TINY_SPEC = ResNetSpec((StageSpec(1, 8, 1),), stem_width=8)


def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 3, 32, 32) images whose colour encodes their int64 label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), size=n)
    noise = rng.normal(0, 12, size=(n, 3, 32, 32))
    images = np.clip(PALETTE[labels][:, :, None, None] + noise, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def write_png_dataset(folder: Path, train: int = 600, test: int = 300) -> None:
    """Synthetic images as a lossless train/<class>/ and test/<class>/ PNG tree, a layout load_cifar reads."""
    from PIL import Image

    for split, count, seed in (("train", train, 1), ("test", test, 2)):
        images, labels = synthetic_images(count, seed)
        for i, (image, label) in enumerate(zip(images, labels)):
            target = folder / split / CLASSES[label] / f"{i:05d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.transpose(1, 2, 0)).save(target)


def build_tiny_run(run_dir: Path, data_dir: Path, cache_dir: Path, epochs: int = 3) -> None:
    """Train TINY_SPEC on a synthetic PNG dataset with `budgetnet train` itself: the run directory every
    deploy test reads is real training output (checkpoint, records, metrics), not a hand-made copy."""
    from unittest import mock

    from budgetnet.cli.main import main

    write_png_dataset(data_dir)
    spec_file = data_dir.parent / "tiny-spec.json"
    spec_file.write_text(TINY_SPEC.to_json() + "\n")
    argv = ["train", "--arch", str(spec_file), "--data", str(data_dir), "--out", str(run_dir), "--epochs", str(epochs),
            "--batch-size", "32", "--lr", "0.05", "--augment", "none", "--precision", "fp32", "--quiet"]
    with mock.patch.dict("os.environ", {"BUDGETNET_CACHE": str(cache_dir)}), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(argv)
    assert code == 0, err.getvalue()


# Each test module imports these fixtures, which makes pytest see one definition per module; the
# caches below make "once per session" hold across modules (the session's base temp is the key).
@functools.cache
def _built_run(root: Path) -> Path:
    build_tiny_run(root / "run", root / "data", root / "cache")
    return root / "run"


@functools.cache
def _exported(run_dir: Path) -> tuple[Path, str]:
    from budgetnet.cli.main import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", str(run_dir), "--format", "onnx"]) == 0
    return run_dir / "export" / "model.onnx", printed.getvalue()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding a tiny model trained on synthetic data (built once per session)."""
    return _built_run(tmp_path_factory.getbasetemp() / "deploy")


@pytest.fixture(scope="session")
def tiny_export(tiny_run: Path) -> tuple[Path, str]:
    """`budgetnet export` of the tiny run, done once per session (exporting costs seconds), and its output."""
    return _exported(tiny_run)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep load_cifar's decoded-data cache out of the user's home during tests."""
    monkeypatch.setenv("BUDGETNET_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
