"""Every layout loads to the same arrays; bad input gets one DataError naming the file; the cache is used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from budgetnet.data import CifarData, load_cifar
from budgetnet.data.dataset import CIFAR10_CLASSES
from budgetnet.errors import DataError

from data_fixtures import (binary_records, folder_members, png_bytes, synthetic, tree_members, write_binary,
                           write_folder, write_python, write_tar, write_zip)


def _assert_exact(data: CifarData, seed: int = 0) -> None:
    train, train_y, test, test_y = synthetic(seed)
    assert data.train_images.dtype == np.uint8 and data.train_labels.dtype == np.int64
    np.testing.assert_array_equal(data.train_images, train)
    np.testing.assert_array_equal(data.train_labels, train_y)
    np.testing.assert_array_equal(data.test_images, test)
    np.testing.assert_array_equal(data.test_labels, test_y)
    assert data.classes == CIFAR10_CLASSES


def test_binary_folder_and_parent_and_targz_load_exactly(tmp_path: Path) -> None:
    folder = write_binary(tmp_path / "src")
    archive = write_tar(tmp_path / "cifar-10-binary.tar.gz", tree_members(folder))
    for path in (folder, folder.parent, archive):
        data = load_cifar(path, cache_dir=tmp_path / "cache")
        _assert_exact(data)
        assert data.source["format"] == "binary" and data.source["lossy"] is False
        # synthetic files are not the official ones: the mismatch is reported, per file
        assert data.source["checksums"] == "mismatch"
        assert data.source["checksum_mismatches"] == ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                                      "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"]


def test_python_folder_and_targz_load_exactly(tmp_path: Path) -> None:
    folder = write_python(tmp_path / "src")
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", tree_members(folder))
    for path in (folder, archive):
        data = load_cifar(path, cache_dir=tmp_path / "cache")
        _assert_exact(data)
        assert data.source["format"] == "python" and data.source["checksums"] == "unknown"


def test_image_folders_dir_zip_and_tar_load_exactly(tmp_path: Path) -> None:
    members = folder_members()
    paths = {"folder": write_folder(tmp_path / "imgs"), "zip": write_zip(tmp_path / "imgs.zip", members),
             "tar": write_tar(tmp_path / "imgs.tar.gz", {f"top/{k}": v for k, v in members.items()})}
    for fmt, path in paths.items():
        data = load_cifar(path, cache_dir=tmp_path / "cache")
        # one class folder per label, classes sorted: here they equal CIFAR's own order
        assert data.classes == tuple(sorted(CIFAR10_CLASSES))
        assert data.source["format"] == ("zip" if fmt == "zip" else "folder") and not data.source["lossy"]
        order = np.argsort([data.classes.index(CIFAR10_CLASSES[y]) for y in synthetic()[1]], kind="stable")
        np.testing.assert_array_equal(data.train_images, synthetic()[0][order])


def test_same_pixels_in_any_format_give_the_same_fingerprint(tmp_path: Path) -> None:
    a = load_cifar(write_binary(tmp_path / "a"), cache_dir=tmp_path / "cache")
    b = load_cifar(write_python(tmp_path / "b"), cache_dir=tmp_path / "cache")
    c = load_cifar(write_binary(tmp_path / "c", seed=1), cache_dir=tmp_path / "cache")
    assert a.source["fingerprint"] == b.source["fingerprint"] != c.source["fingerprint"]


def test_second_load_comes_from_the_cache_and_a_change_invalidates_it(tmp_path: Path, monkeypatch) -> None:
    folder = write_binary(tmp_path / "src")
    first = load_cifar(folder, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "decoded").glob("*/train_images.npy"))) == 1

    def no_decoding(path):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr("budgetnet.data.loader.decode", no_decoding)
    second = load_cifar(folder, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(second.train_images, first.train_images)
    assert second.source == first.source
    monkeypatch.undo()
    # rewriting a batch (new size) changes the key, so the new content is decoded
    train, train_y, _, _ = synthetic(seed=5)
    (folder / "data_batch_1.bin").write_bytes(binary_records(train[:7], train_y[:7]))
    third = load_cifar(folder, cache_dir=tmp_path / "cache")
    assert len(third.train_images) == len(first.train_images) + 3


def test_image_policy_converts_other_sizes_and_modes(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs")
    from PIL import Image

    Image.new("L", (64, 48), 200).save(root / "train" / "cat" / "big_grey.png")
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(root / "train" / "cat" / "clear.png")
    data = load_cifar(root, cache_dir=tmp_path / "cache")
    assert data.train_images.shape == (22, 3, 32, 32)
    cat = data.classes.index("cat")
    cats = data.train_images[data.train_labels == cat]
    # natural order puts the numbered files first; then big_grey (grey 200 everywhere) and clear (on black)
    assert (cats[-2] == 200).all() and (cats[-1] == 0).all()


# ---- bad input: each case is one DataError that names the offending file


def _error(path: Path, tmp_path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_cifar(path, cache_dir=tmp_path / "cache")
    return str(info.value)


def test_truncated_binary_batch(tmp_path: Path) -> None:
    folder = write_binary(tmp_path)
    data = (folder / "data_batch_3.bin").read_bytes()
    (folder / "data_batch_3.bin").write_bytes(data[:-100])
    message = _error(folder, tmp_path)
    assert "data_batch_3.bin" in message and "truncated" in message


def test_binary_label_out_of_range(tmp_path: Path) -> None:
    folder = write_binary(tmp_path)
    data = bytearray((folder / "test_batch.bin").read_bytes())
    data[3073 * 2] = 10  # the third record's label byte
    (folder / "test_batch.bin").write_bytes(bytes(data))
    message = _error(folder, tmp_path)
    assert "test_batch.bin" in message and "label 10 at index 2" in message


def test_missing_split_is_refused_not_partial(tmp_path: Path) -> None:
    folder = write_binary(tmp_path / "bin")
    (folder / "test_batch.bin").unlink()
    assert "test_batch.bin" in _error(folder, tmp_path) and "test split" in _error(folder, tmp_path)
    folder = write_python(tmp_path / "py")
    (folder / "data_batch_4").unlink()
    assert "data_batch_4" in _error(folder, tmp_path)
    root = write_folder(tmp_path / "imgs")
    for f in (root / "test").rglob("*.png"):
        f.unlink()
    message = _error(root, tmp_path)
    assert "missing split" in message and str(root / "test") in message


def test_corrupt_pickle(tmp_path: Path) -> None:
    folder = write_python(tmp_path)
    data = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(data[: len(data) // 2])
    message = _error(folder, tmp_path)
    assert "data_batch_2" in message and "corrupt" in message


@pytest.mark.parametrize("data, expected", [
    (np.zeros((4, 3072), np.float32), "float32"),
    (np.zeros((4, 1000), np.uint8), "(4, 1000)"),
])
def test_pickle_with_wrong_dtype_or_shape(tmp_path: Path, data: np.ndarray, expected: str) -> None:
    import pickle

    folder = write_python(tmp_path)
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": data, "labels": [0] * 4}, protocol=2))
    message = _error(folder, tmp_path)
    assert "data_batch_1" in message and expected in message


def test_pickle_label_out_of_range(tmp_path: Path) -> None:
    import pickle

    folder = write_python(tmp_path)
    (folder / "data_batch_5").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [1, -1]}))
    message = _error(folder, tmp_path)
    assert "data_batch_5" in message and "label -1" in message


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs")
    (root / "train" / "dog" / "broken.png").write_bytes(png_bytes(np.zeros((3, 32, 32), np.uint8))[:40])
    message = _error(root, tmp_path)
    assert "broken.png" in message and "not a readable image" in message
    members = folder_members()
    members["train/dog/broken.jpg"] = b"not a jpeg"
    message = _error(write_zip(tmp_path / "bad.zip", members), tmp_path)
    assert "bad.zip:train/dog/broken.jpg" in message


def test_corrupt_archives_and_unknown_layouts(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "x.tar.gz", tree_members(write_binary(tmp_path / "src")))
    (tmp_path / "cut.tar.gz").write_bytes(archive.read_bytes()[:500])
    assert "cut.tar.gz" in _error(tmp_path / "cut.tar.gz", tmp_path)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 nothing")
    assert "bad.zip" in _error(tmp_path / "bad.zip", tmp_path)
    (tmp_path / "empty").mkdir()
    assert "no CIFAR-10 layout" in _error(tmp_path / "empty", tmp_path)
    assert "no such file" in _error(tmp_path / "absent", tmp_path)


def test_test_class_without_training_images(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs")
    (root / "test" / "zebra").mkdir()
    (root / "test" / "zebra" / "0.png").write_bytes(png_bytes(np.zeros((3, 32, 32), np.uint8)))
    message = _error(root, tmp_path)
    assert "zebra" in message
