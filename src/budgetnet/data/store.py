"""The offline augmentation store: 6N uint8 images on disk, described by a manifest, built once and reused."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from budgetnet.data.augment import COPIES, COPY_NAMES, AugmentRecipe, augment_copy, sample_params
from budgetnet.data.cache import default_cache_dir
from budgetnet.data.dataset import CifarData
from budgetnet.data.normalize import channel_stats
from budgetnet.errors import DataError
from budgetnet.fsutil import (LEGACY_TEMP_NAME, TEMP_NAME, atomic_path, atomic_write_text, reserve_space,
                              sweep_cache_folders, sweep_stale_temps)

STORE_KIND = "budgetnet-augmented-store"
STORE_VERSION = 2  # bump when the layout or the augmentation code changes what a seed produces
ARRAY_FILES = ("images.npy", "labels.npy", "origin.npy")
STORE_FILES = {"manifest.json", *ARRAY_FILES}  # what a store folder holds, beside temporary files
# keys that must equal the request for a store to be reused; the rest of the manifest is description
IDENTITY = ("kind", "format_version", "recipe", "seed", "source_fingerprint", "counts", "classes")
CPU_CHUNK = 1024  # images per batch on CPU; augment_copy works through it in cache-sized blocks
GPU_CHUNK = 16384  # images per batch on an accelerator, where launches, not caches, are the cost


@dataclass(frozen=True)
class AugmentedStore:
    """Copy-major rows: row c*N + i is copy c (0 original, 1-5 the paper's augmentations) of image i."""

    images: np.ndarray  # uint8 (6N, 3, 32, 32), memory-mapped read-only
    labels: np.ndarray  # int64 (6N,)
    origin: np.ndarray  # int64 (6N,): index of the original training image of each row
    manifest: dict


def default_store_dir(data: CifarData, seed: int, n: int, cache_dir: Path | None = None) -> Path:
    """cache/stores/<source fingerprint>-seed<seed>-n<N>."""
    root = cache_dir if cache_dir is not None else default_cache_dir()
    return root / "stores" / f"{data.source['fingerprint'][:16]}-seed{seed}-n{n}"


def _identity(data: CifarData, seed: int, n: int, recipe: AugmentRecipe) -> dict:
    return {
        "kind": STORE_KIND, "format_version": STORE_VERSION, "recipe": recipe.to_dict(), "seed": seed,
        "source_fingerprint": data.source["fingerprint"], "classes": list(data.classes),
        "counts": {"originals": n, "copies": COPIES, "total": COPIES * n, "copy_names": list(COPY_NAMES)},
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _open(folder: Path, identity: dict, data: CifarData) -> tuple[AugmentedStore | None, str | None]:
    """(the store in `folder`, None) if its manifest matches `identity` and its files verify against the
    manifest and `data`; else (None, why not), the reason None when no complete store is there at all."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None, None
    try:
        if any(manifest.get(key) != identity[key] for key in IDENTITY):
            return None, "it was built for other data, seed or subset"
        if any((folder / name).stat().st_size != manifest["files"][name]["bytes"] for name in ARRAY_FILES):
            return None, "its files do not have the sizes its manifest records"
        arrays = [np.load(folder / name, mmap_mode="r") for name in ARRAY_FILES]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, "its files are missing or unreadable"
    n, total = identity["counts"]["originals"], identity["counts"]["total"]
    if arrays[0].shape != (total, 3, 32, 32) or any(a.shape != (total,) for a in arrays[1:]):
        return None, "its arrays do not have the recorded shapes"
    # the labels and origins follow from the data; a corrupt one would send training an impossible target
    if not np.array_equal(arrays[1], np.tile(data.train_labels[:n].astype(np.int64), COPIES)):
        return None, "labels.npy does not hold the data's labels"
    if not np.array_equal(arrays[2], np.tile(np.arange(n, dtype=np.int64), COPIES)):
        return None, "origin.npy does not hold the recorded image order"
    if _sha256(folder / "images.npy") != manifest.get("images_sha256"):
        return None, "images.npy does not match the checksum in its manifest"
    return AugmentedStore(*arrays, manifest=manifest), None


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def augment_into(out: np.ndarray, images: np.ndarray, seed: int, recipe: AugmentRecipe, device: torch.device,
                 progress: bool) -> None:
    """Fill out (6N, 3, 32, 32) copy-major with the six copies of uint8 images (N, 3, 32, 32), chunk by chunk."""
    from tqdm import tqdm

    n = len(images)
    params = sample_params(n, torch.Generator().manual_seed(seed), recipe)
    source = torch.from_numpy(np.ascontiguousarray(images))
    chunk = CPU_CHUNK if device.type == "cpu" else GPU_CHUNK
    with tqdm(total=COPIES * n, unit="img", desc="augment store", disable=not progress) as bar:
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            batch, part = source[start:stop].to(device), params.take(start, stop)
            for copy in range(COPIES):
                out[copy * n + start : copy * n + stop] = augment_copy(copy, batch, part).cpu().numpy()
                bar.update(stop - start)


def _build(folder: Path, data: CifarData, identity: dict, n: int, seed: int, recipe: AugmentRecipe,
           device: torch.device, progress: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # from here on the folder no longer looks complete
    with atomic_path(folder / "images.npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(COPIES * n, 3, 32, 32))
        # a memory-mapped write past a full disk is SIGBUS, a crash with no message: claim the space first
        reserve_space(tmp, out.offset + out.nbytes)
        augment_into(out, data.train_images[:n], seed, recipe, device, progress)
        out.flush()
        del out
    labels = np.tile(data.train_labels[:n].astype(np.int64), COPIES)
    _save_npy(folder / "labels.npy", labels)
    _save_npy(folder / "origin.npy", np.tile(np.arange(n, dtype=np.int64), COPIES))
    mean, std = channel_stats(data.train_images[:n])
    manifest = {
        **identity, "subset": n if n < len(data.train_images) else None, "source": data.source,
        "layout": "copy-major: row c*N + i is copy c of training image i; copy 0 is the original",
        "mean": mean, "std": std, "device": device.type, "torch": torch.__version__,
        "files": {name: {"bytes": (folder / name).stat().st_size} for name in ARRAY_FILES},
        "images_sha256": _sha256(folder / "images.npy"),
    }
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1))  # last: marks the store complete


def load_or_build_store(data: CifarData, out_dir: Path | None = None, seed: int = 0, subset: int | None = None,
                        device: str | torch.device = "cpu", progress: bool = True,
                        cache_dir: Path | None = None) -> AugmentedStore:
    """The store for (data, seed, subset): reused when its manifest matches, otherwise built and written."""
    total = len(data.train_images)
    n = total if subset is None else subset
    if not 0 < n <= total:
        raise DataError(f"--subset must be between 1 and {total} (the training images), got {subset}")
    recipe = AugmentRecipe()
    folder = Path(out_dir) if out_dir is not None else default_store_dir(data, seed, n, cache_dir)
    _check_store_folder(folder)
    sweep_stale_temps(folder)
    if out_dir is None:  # a build killed under another key left its temporary file in that key's folder
        sweep_cache_folders(folder.parent)
    identity = _identity(data, seed, n, recipe)
    store, reason = _open(folder, identity, data)
    if store is None:
        if reason is not None:
            print(f"note: rebuilding the store in {folder}: {reason}", file=sys.stderr, flush=True)
        _build(folder, data, identity, n, seed, recipe, torch.device(device), progress)
        store, reason = _open(folder, identity, data)
        if store is None:
            raise DataError(f"{folder}: the store just written does not verify ({reason}); is the disk failing?")
    return store


def _check_store_folder(folder: Path) -> None:
    """Refuse a folder that holds files other than a store's: building would write among the user's files."""
    if not folder.is_dir():
        return
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in STORE_FILES
                     and not TEMP_NAME.match(p.name) and not LEGACY_TEMP_NAME.match(p.name))
    if foreign:
        raise DataError(f"{folder} holds files that are not part of an augmentation store ({foreign[0]}, ...); "
                        f"pick an empty or new --out folder")
