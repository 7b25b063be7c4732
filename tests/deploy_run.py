"""A tiny trained run directory, built here so deploy tests never wait on a real training run.

The data is synthetic and learnable: class c is noise around its own colour, so a 1-block,
8-channel model reaches high accuracy in a few hundred steps and int8 agreement is meaningful.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from budgetnet.checkpoint import save_checkpoint
from budgetnet.data.normalize import channel_stats, normalize
from budgetnet.model import build_model
from budgetnet.spec import ResNetSpec, StageSpec

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TINY_SPEC = ResNetSpec((StageSpec(1, 8, 1),), stem_width=8)


def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 3, 32, 32) images whose colour encodes their int64 label."""
    rng = np.random.default_rng(seed)
    palette = np.random.default_rng(123).integers(20, 236, size=(len(CLASSES), 3))
    labels = rng.integers(0, len(CLASSES), size=n)
    noise = rng.normal(0, 12, size=(n, 3, 32, 32))
    images = np.clip(palette[labels][:, :, None, None] + noise, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def build_tiny_run(run_dir: Path, steps: int = 150) -> dict:
    """Train TINY_SPEC on synthetic data and write the contract's run directory; returns data.json."""
    torch.manual_seed(0)
    train_x, train_y = synthetic_images(2048, seed=1)
    test_x, test_y = synthetic_images(512, seed=2)
    mean, std = channel_stats(train_x)
    model = build_model(TINY_SPEC)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x_all, y_all = torch.from_numpy(train_x), torch.from_numpy(train_y)
    for step in range(steps):
        index = torch.randint(0, len(train_x), (64,))
        loss = torch.nn.functional.cross_entropy(model(normalize(x_all[index], mean, std)), y_all[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        test_acc = 100.0 * (model(normalize(torch.from_numpy(test_x), mean, std)).argmax(1).numpy() == test_y).mean()
    source = {"format": "synthetic", "path": str(run_dir / "no-such-data"), "fingerprint": "synthetic-0",
              "checksums": "unknown", "lossy": False}
    data = {"classes": list(CLASSES), "mean": mean, "std": std, "source": source, "augment": "none",
            "subset": None, "val_split": 0}
    recipe = {"name": "tiny-test", "epochs": 1, "batch_size": 64, "lr": 0.05, "seed": 0}
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "spec.json").write_text(TINY_SPEC.to_json() + "\n")
    (run_dir / "recipe.json").write_text(json.dumps(recipe) + "\n")
    (run_dir / "data.json").write_text(json.dumps(data) + "\n")
    (run_dir / "env.json").write_text(json.dumps({"torch": torch.__version__, "device": "cpu"}) + "\n")
    metrics = {"epoch": 1, "train_loss": loss.item(), "train_acc": 0.0, "test_loss": 0.0, "test_acc": float(test_acc),
               "lr": 0.05, "seconds": 1.0, "images_per_s": 1.0}
    (run_dir / "metrics.jsonl").write_text(json.dumps(metrics) + "\n")
    save_checkpoint(run_dir / "checkpoints" / "last.pt", {
        "spec": TINY_SPEC.to_dict(), "recipe": recipe, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "epoch": 1, "rng": {"torch": torch.get_rng_state()}, "data": data, "arch": "tiny",
    })
    np.savez(run_dir.parent / "synthetic.npz", train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
    return data


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding a tiny model trained on synthetic data (built once per session)."""
    run_dir = tmp_path_factory.mktemp("deploy") / "run"
    build_tiny_run(run_dir)
    return run_dir
