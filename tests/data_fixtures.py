"""Small synthetic CIFAR-10 datasets written in every supported layout, for the data tests."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from budgetnet.data.dataset import CIFAR10_CLASSES

PER_BATCH = 4  # images per training batch file: 5 files make 20 training images
TEST_COUNT = 6


def synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random uint8 train/test images with labels cycling through the 10 classes."""
    rng = np.random.default_rng(seed)
    train = rng.integers(0, 256, (5 * PER_BATCH, 3, 32, 32), dtype=np.uint8)
    test = rng.integers(0, 256, (TEST_COUNT, 3, 32, 32), dtype=np.uint8)
    return train, np.arange(len(train)) % 10, test, (np.arange(len(test)) + 3) % 10


def binary_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The binary version's records: a label byte, then 3072 pixel bytes."""
    flat = images.reshape(len(images), -1)
    return np.concatenate([np.asarray(labels, np.uint8)[:, None], flat], axis=1).tobytes()


def write_binary(root: Path, seed: int = 0) -> Path:
    """ROOT/cifar-10-batches-bin/ with five training batches, a test batch and batches.meta.txt."""
    train, train_y, test, test_y = synthetic(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for b in range(5):
        part = slice(b * PER_BATCH, (b + 1) * PER_BATCH)
        (folder / f"data_batch_{b + 1}.bin").write_bytes(binary_records(train[part], train_y[part]))
    (folder / "test_batch.bin").write_bytes(binary_records(test, test_y))
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n")
    return folder


def write_python(root: Path, seed: int = 0) -> Path:
    """ROOT/cifar-10-batches-py/ pickles with str keys, as Python 3 writes them."""
    train, train_y, test, test_y = synthetic(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in range(5):
        part = slice(b * PER_BATCH, (b + 1) * PER_BATCH)
        batch = {"data": train[part].reshape(PER_BATCH, -1), "labels": train_y[part].tolist(), "batch_label": "x"}
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    batch = {"data": test.reshape(len(test), -1), "labels": test_y.tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CIFAR10_CLASSES)}, protocol=2))
    return folder


def png_bytes(chw: np.ndarray) -> bytes:
    """A lossless PNG of a uint8 (3, H, W) array."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0))).save(out, format="PNG")
    return out.getvalue()


def folder_members(seed: int = 0) -> dict[str, bytes]:
    """{relative name: PNG bytes} for train/<class>/N.png and test/<class>/N.png."""
    train, train_y, test, test_y = synthetic(seed)
    members = {}
    for split, images, labels in (("train", train, train_y), ("test", test, test_y)):
        for i, (image, label) in enumerate(zip(images, labels)):
            members[f"{split}/{CIFAR10_CLASSES[label]}/{i}.png"] = png_bytes(image)
    return members


def write_folder(root: Path, seed: int = 0) -> Path:
    """An image-folder dataset in ROOT."""
    for name, data in folder_members(seed).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A .zip holding `members`."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz holding `members`."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def tree_members(folder: Path) -> dict[str, bytes]:
    """{name relative to folder's parent: bytes} for every file under folder."""
    return {str(p.relative_to(folder.parent)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
