"""The offline store: layout, determinism, reuse, rebuild on a manifest mismatch, and interrupted builds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from budgetnet.data import AugmentedStore, CifarData, load_or_build_store
from budgetnet.data.augment import augment_copy, sample_params
from budgetnet.data.normalize import channel_stats
from budgetnet.errors import DataError

N = 40


def _data(seed: int = 0, n: int = N) -> CifarData:
    rng = np.random.default_rng(seed)
    return CifarData(
        train_images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), train_labels=np.arange(n) % 10,
        test_images=rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8), test_labels=np.arange(5),
        classes=tuple("abcdefghij"), source={"format": "binary", "fingerprint": f"{seed:064d}"},
    )


def _build(data: CifarData, out: Path, **kw) -> AugmentedStore:
    return load_or_build_store(data, out_dir=out, progress=False, **kw)


def test_layout_is_copy_major_with_originals_first(tmp_path: Path) -> None:
    data = _data()
    store = _build(data, tmp_path / "s", seed=3)
    assert store.images.shape == (6 * N, 3, 32, 32) and store.images.dtype == np.uint8
    assert isinstance(store.images, np.memmap) and not store.images.flags.writeable
    np.testing.assert_array_equal(store.images[:N], data.train_images)
    np.testing.assert_array_equal(store.images[N : 2 * N], data.train_images[..., ::-1])
    np.testing.assert_array_equal(store.labels, np.tile(data.train_labels, 6))
    np.testing.assert_array_equal(store.origin, np.tile(np.arange(N), 6))
    # row c*N + i is exactly copy c of image i under the seed's parameters
    params = sample_params(N, torch.Generator().manual_seed(3))
    rotated = augment_copy(4, torch.from_numpy(data.train_images), params).numpy()
    np.testing.assert_array_equal(store.images[4 * N : 5 * N], rotated)
    m = store.manifest
    assert m["seed"] == 3 and m["counts"] == {"originals": N, "copies": 6, "total": 6 * N,
                                               "copy_names": ["original", "flip", "pad-crop", "resize-crop",
                                                              "rotate", "color-jitter"]}
    assert m["source_fingerprint"] == data.source["fingerprint"] and m["recipe"]["max_angle"] == 90.0
    assert (m["mean"], m["std"]) == channel_stats(data.train_images)


def test_same_seed_gives_a_byte_identical_store_and_another_seed_does_not(tmp_path: Path, monkeypatch) -> None:
    data = _data()
    a = _build(data, tmp_path / "a", seed=1)
    monkeypatch.setattr("budgetnet.data.store.CPU_CHUNK", 7)  # chunking must not change a single byte
    b = _build(data, tmp_path / "b", seed=1)
    c = _build(data, tmp_path / "c", seed=2)
    assert (tmp_path / "a" / "images.npy").read_bytes() == (tmp_path / "b" / "images.npy").read_bytes()
    assert a.manifest["images_sha256"] == b.manifest["images_sha256"] != c.manifest["images_sha256"]
    assert not np.array_equal(a.images[2 * N :], c.images[2 * N :])


def test_subset_uses_the_first_n_images_and_is_checked(tmp_path: Path) -> None:
    data = _data()
    store = _build(data, tmp_path / "s", subset=10)
    np.testing.assert_array_equal(store.images[:10], data.train_images[:10])
    assert store.manifest["subset"] == 10 and len(store.labels) == 60
    for bad in (0, N + 1):
        with pytest.raises(DataError, match="--subset"):
            _build(data, tmp_path / "bad", subset=bad)


def test_default_folder_is_keyed_by_fingerprint_seed_and_subset(tmp_path: Path) -> None:
    store = load_or_build_store(_data(), seed=4, subset=8, progress=False, cache_dir=tmp_path)
    assert Path(store.images.filename).parent == tmp_path / "stores" / f"{'0' * 16}-seed4-n8"


def _no_build(*args, **kwargs):
    raise AssertionError("rebuilt a store whose manifest matches")


def test_matching_manifest_is_reused_and_a_mismatch_rebuilds(tmp_path: Path, monkeypatch) -> None:
    data, out = _data(), tmp_path / "s"
    first = _build(data, out, seed=5)
    monkeypatch.setattr("budgetnet.data.store._build", _no_build)
    assert _build(data, out, seed=5).manifest == first.manifest
    monkeypatch.undo()
    manifest = json.loads((out / "manifest.json").read_text())
    for key, value in (("seed", 6), ("format_version", 0), ("recipe", {"max_angle": 45.0})):
        (out / "manifest.json").write_text(json.dumps({**manifest, key: value}))
        rebuilt = _build(data, out, seed=5)
        assert rebuilt.manifest[key] == first.manifest[key]
    # a different source (another fingerprint) asks for the same folder: rebuilt, not reused
    other = _build(_data(seed=9), out, seed=5)
    assert other.manifest["source_fingerprint"] != first.manifest["source_fingerprint"]
    np.testing.assert_array_equal(other.images[:N], _data(seed=9).train_images)


def test_missing_or_truncated_arrays_rebuild(tmp_path: Path) -> None:
    data, out = _data(), tmp_path / "s"
    _build(data, out)
    raw = (out / "images.npy").read_bytes()
    (out / "images.npy").write_bytes(raw[: len(raw) // 2])
    assert _build(data, out).images.shape == (6 * N, 3, 32, 32)
    assert (out / "images.npy").read_bytes() == raw
    (out / "manifest.json").unlink()
    assert _build(data, out).manifest["seed"] == 0


def test_interrupted_build_leaves_no_complete_looking_store(tmp_path: Path, monkeypatch) -> None:
    data, out = _data(), tmp_path / "s"
    _build(data, out, seed=1)  # an older complete store in the same folder
    calls = []

    def failing(copy, images, params):
        calls.append(copy)
        if len(calls) == 9:
            raise RuntimeError("simulated crash mid-build")
        return augment_copy(copy, images, params)

    monkeypatch.setattr("budgetnet.data.store.augment_copy", failing)
    monkeypatch.setattr("budgetnet.data.store.CPU_CHUNK", 8)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _build(data, out, seed=2)
    assert not (out / "manifest.json").exists()
    assert sorted(p.name for p in out.iterdir()) == ["images.npy", "labels.npy", "origin.npy"]  # old ones, no temps
    monkeypatch.undo()
    store = _build(data, out, seed=2)
    assert store.manifest["seed"] == 2 and len(calls) == 9
