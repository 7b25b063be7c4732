"""The real CIFAR-10 in ../shared: exact counts and checksums, the python version, and the JPEG copy."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from budgetnet.data import load_cifar
from budgetnet.data.dataset import CIFAR10_CLASSES

from data_fixtures import write_zip


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    shared = Path(__file__).resolve().parents[2] / "shared"
    if not (shared / "cifar10" / "cifar-10-batches-bin").is_dir():
        pytest.skip(f"the real CIFAR-10 is not at {shared / 'cifar10'}")
    return shared, load_cifar(shared / "cifar10", cache_dir=tmp_path_factory.mktemp("cache"))


def test_binary_version_counts_and_checksums(real) -> None:
    _, data = real
    assert data.source["format"] == "binary" and data.source["checksums"] == "match"
    assert data.source["checksum_mismatches"] == []
    assert data.classes == CIFAR10_CLASSES
    assert data.train_images.shape == (50_000, 3, 32, 32) and data.test_images.shape == (10_000, 3, 32, 32)
    assert np.bincount(data.train_labels).tolist() == [5_000] * 10
    assert np.bincount(data.test_labels).tolist() == [1_000] * 10
    assert data.test_labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # as PROVENANCE.md lists


def test_python_version_written_from_it_loads_the_same_pixels(real, tmp_path: Path) -> None:
    shared, binary = real
    subprocess.run([sys.executable, str(shared / "cifar10" / "make_python_version.py"), str(tmp_path)],
                   check=True, capture_output=True)
    data = load_cifar(tmp_path, cache_dir=tmp_path / "cache")
    assert data.source["format"] == "python" and data.source["checksums"] == "unknown"
    assert data.source["fingerprint"] == binary.source["fingerprint"]  # the same pixels, labels and classes
    np.testing.assert_array_equal(data.test_images, binary.test_images)


def test_jpeg_class_folders_from_the_real_archive(real, tmp_path: Path) -> None:
    shared, binary = real
    archive = shared / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is not present")
    keep = {f"{split}/{c}/{k:04d}.jpg" for split, count in (("train", 20), ("test", 5))
            for c in CIFAR10_CLASSES for k in range(count)}
    members = {}
    with tarfile.open(archive) as tar:  # a few hundred of the 60,000 files are enough
        for member in tar:
            if member.name.lstrip("./") in keep:
                members[member.name.lstrip("./")] = tar.extractfile(member).read()
    assert len(members) == len(keep)
    data = load_cifar(write_zip(tmp_path / "part.zip", members), cache_dir=tmp_path / "cache")
    assert data.source["format"] == "zip" and data.source["lossy"] is True
    assert np.bincount(data.train_labels).tolist() == [20] * 10 and len(data.test_images) == 50
    # the k-th file of class c is the k-th training image of class c; JPEG is close, not exact
    lossless = np.concatenate([binary.train_images[binary.train_labels == c][:20] for c in range(10)])
    error = np.abs(data.train_images.astype(int) - lossless).mean()
    assert 1 < error < 12
