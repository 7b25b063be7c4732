"""From a loaded CIFAR-10 to the train/val/test row sets and normalisation a recipe asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from budgetnet.errors import SpecError
from budgetnet.spec import ResNetSpec
from budgetnet.train.batches import ImageSet, Normalizer, resident, stream_seed
from budgetnet.train.recipe import Recipe, RecipeError

_VAL_SALT = 0x7A1_5E7
STORE_SEED = 0  # the offline store is the dataset, built once; the run seed varies init and order only


@dataclass(frozen=True)
class PreparedData:
    """Everything a run trains and evaluates on."""

    train: ImageSet  # training rows (augmented copies included for "offline")
    test: ImageSet  # the official test set, reported, never used to choose anything
    val: ImageSet | None  # held-out original training images, None without --val-split
    normalizer: Normalizer
    info: dict[str, Any]  # what data.json records
    val_indices: list[int]  # the held-out original training images, by index


def choose_val(originals: int, count: int, seed: int) -> np.ndarray:
    """`count` original-image indices held out for validation, a seeded choice, sorted."""
    if count >= originals:
        raise RecipeError(f"--val-split {count} leaves no training images (only {originals} available)")
    generator = torch.Generator().manual_seed(stream_seed(seed, 0, _VAL_SALT))
    return np.sort(torch.randperm(originals, generator=generator)[:count].numpy())


def held_out_set(data: Any, indices: np.ndarray) -> ImageSet:
    """The original training images at `indices` (a run's validation split), as their own row set."""
    return ImageSet(np.ascontiguousarray(data.train_images[indices]), np.asarray(data.train_labels[indices]))


def check_fits(spec: ResNetSpec, data: Any) -> None:
    """Before any training or store building: the spec's classes and input channels are the data's."""
    classes, channels = len(data.classes), data.train_images.shape[1]
    if spec.num_classes != classes:
        raise SpecError(f"the spec has num_classes {spec.num_classes} but the data has {classes} classes "
                        f"({', '.join(data.classes)}); set num_classes to {classes}")
    if spec.in_channels != channels:
        raise SpecError(f"the spec has in_channels {spec.in_channels} but the data's images have {channels} "
                        f"channels; set in_channels to {channels}")


def check_low_res(spec: ResNetSpec, recipe: Recipe) -> None:
    """A recipe with low-res epochs needs a network whose pooling leaves pixels at that size (a RecipeError if not)."""
    from budgetnet.counts import count_macs

    if recipe.low_res_epochs:
        try:
            count_macs(spec, recipe.low_res_size)
        except SpecError as e:
            raise RecipeError(f"--low-res-size {recipe.low_res_size} is too small for this network: {e}") from None


def prepare_data(data: Any, recipe: Recipe, device: torch.device, progress: bool = True) -> PreparedData:
    """Build the row sets for `recipe` from a CifarData (the offline store is loaded or built here)."""
    from budgetnet.data.normalize import channel_stats

    if recipe.subset is not None and recipe.subset > len(data.train_labels):
        raise RecipeError(f"--subset {recipe.subset} is more than the {len(data.train_labels)} training images "
                          f"the data holds")
    originals = len(data.train_labels) if recipe.subset is None else recipe.subset
    val_idx = choose_val(originals, recipe.val_split, recipe.seed) if recipe.val_split else np.zeros(0, np.int64)
    if recipe.augment == "offline":
        from budgetnet.data import load_or_build_store

        store = load_or_build_store(data, seed=STORE_SEED, subset=recipe.subset, device=device, progress=progress)
        mean, std = store.manifest["mean"], store.manifest["std"]
        # a held-out image leaves with all its copies, or its augmentations would leak into validation
        rows = np.flatnonzero(~np.isin(store.origin, val_idx)) if len(val_idx) else None
        train = ImageSet(store.images, store.labels, rows)
    else:
        images, labels = data.train_images[:originals], data.train_labels[:originals]
        mean, std = channel_stats(images)
        rows = np.setdiff1d(np.arange(originals), val_idx) if len(val_idx) else None
        train = ImageSet(images, labels, rows)
    val = None
    if len(val_idx):
        val = held_out_set(data, val_idx)
    info = {
        "classes": list(data.classes),
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "source": data.source,
        "augment": recipe.augment,
        "subset": recipe.subset,
        "val_split": recipe.val_split,
        "train_rows": len(train),
    }
    test = ImageSet(data.test_images, data.test_labels)
    train, test = resident(train, device), resident(test, device)
    val = resident(val, device) if val is not None else None
    return PreparedData(train, test, val, Normalizer(tuple(info["mean"]), tuple(info["std"])), info, val_idx.tolist())
