"""A tiny trained run directory, built here so deploy tests never wait on a real training run.

The data is synthetic and learnable: class c is noise around its own colour, so a 1-block,
8-channel model reaches high accuracy in a few hundred steps and int8 agreement is meaningful.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from budgetnet.checkpoint import save_checkpoint
from budgetnet.data.normalize import channel_stats, normalize
from budgetnet.model import build_model
from budgetnet.spec import ResNetSpec, StageSpec
from budgetnet.train.recipe import Recipe

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


def build_tiny_run(run_dir: Path, data_dir: Path, cache_dir: Path, steps: int = 60) -> None:
    """Train TINY_SPEC on a synthetic PNG dataset and write the contract's run directory."""
    from budgetnet.data import load_cifar

    write_png_dataset(data_dir)
    dataset = load_cifar(data_dir, cache_dir=cache_dir)
    torch.manual_seed(0)
    mean, std = channel_stats(dataset.train_images)
    model = build_model(TINY_SPEC)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    x_all, y_all = torch.from_numpy(dataset.train_images), torch.from_numpy(dataset.train_labels)
    for _ in range(steps):
        index = torch.randint(0, len(x_all), (32,))
        loss = torch.nn.functional.cross_entropy(model(normalize(x_all[index], mean, std)), y_all[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(normalize(torch.from_numpy(dataset.test_images), mean, std))
    test_acc = float((logits.argmax(1).numpy() == dataset.test_labels).mean())
    data = {"classes": list(dataset.classes), "mean": mean, "std": std, "source": dataset.source,
            "augment": "none", "subset": None, "val_split": 0}
    recipe = Recipe(epochs=1, batch_size=64, lr=0.05).to_dict()
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "spec.json").write_text(TINY_SPEC.to_json() + "\n")
    (run_dir / "recipe.json").write_text(json.dumps(recipe) + "\n")
    (run_dir / "data.json").write_text(json.dumps(data) + "\n")
    (run_dir / "env.json").write_text(json.dumps({"arch": "tiny", "torch": torch.__version__, "device": "cpu"}) + "\n")
    metrics = {"epoch": 1, "train_loss": loss.item(), "train_acc": 0.5, "test_loss": 0.1, "test_acc": test_acc,
               "lr": 0.05, "seconds": 1.0, "images_per_s": 1.0}
    (run_dir / "metrics.jsonl").write_text(json.dumps(metrics) + "\n")
    save_checkpoint(run_dir / "checkpoints" / "last.pt", {
        "spec": TINY_SPEC.to_dict(), "recipe": recipe, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "epoch": 1, "rng": {"torch": torch.get_rng_state()}, "data": data, "arch": "tiny",
    })


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
