"""Batches sliced straight from uint8 arrays: a seeded order per epoch, no DataLoader, no per-image Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from budgetnet.data.normalize import normalize

_ORDER_SALT = 0x5EED_0F_0DE  # keeps the epoch-order stream apart from the other per-epoch streams
_AUGMENT_SALT = 0xA06_3E7
_RANK_STRIDE = 104_729  # a prime: per-rank augmentation streams stay apart


@dataclass(frozen=True)
class ImageSet:
    """uint8 (N, 3, 32, 32) images with int64 labels, as a (memory-mapped) array or a device tensor."""

    images: np.ndarray | torch.Tensor  # uint8 (N, 3, 32, 32)
    labels: np.ndarray | torch.Tensor  # int64 (N,)
    rows: np.ndarray | None = None  # int64: the rows of `images` that belong to this set (None = all)

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.labels)


@dataclass(frozen=True)
class Normalizer:
    """The per-channel statistics a run was trained with, applied on the device."""

    mean: tuple[float, ...]  # per channel, 0-1 units
    std: tuple[float, ...]  # per channel, 0-1 units

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return normalize(images, self.mean, self.std).contiguous(memory_format=torch.channels_last)


def stream_seed(seed: int, epoch: int, salt: int) -> int:
    """A 63-bit seed for one (run seed, epoch, purpose) stream, so epochs never share random numbers."""
    return (seed * 1_000_003 + epoch * 7_919 + salt) % (2**63 - 1)


def epoch_order(n: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """The shuffled row indices rank `rank` of `world_size` visits in `epoch`: a pure function of its arguments.

    The permutation is made on `device`, where the data lives, so a GPU-resident store never waits on the host;
    every rank draws the same permutation and keeps its own stride of it.
    """
    generator = torch.Generator(device=device).manual_seed(stream_seed(seed, epoch, _ORDER_SALT))
    order = torch.randperm(n, generator=generator, device=device)
    # strided shards: every rank gets the same count (the remainder is dropped) so steps stay in lockstep
    per_rank = n // world_size
    return order[rank : per_rank * world_size : world_size]


def augment_generator(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """The CPU generator online augmentation draws from in `epoch` (CPU, so every device gets the same draws).

    Each rank gets its own stream, so two ranks never augment alike.
    """
    return torch.Generator().manual_seed(stream_seed(seed, epoch, _AUGMENT_SALT + _RANK_STRIDE * rank))


def train_device(data: ImageSet) -> torch.device:
    """Where the images live: a GPU for a device-resident set, else the CPU."""
    return data.images.device if isinstance(data.images, torch.Tensor) else torch.device("cpu")


def resident(data: ImageSet, device: torch.device, headroom: float = 0.5) -> ImageSet:
    """The set copied into `device` memory when it takes at most `headroom` of what is free, else as it is.

    On a GPU this removes every host-to-device copy from the training loop: batches are sliced on the device.
    """
    if device.type != "cuda":
        return data
    free, _ = torch.cuda.mem_get_info(device)
    if len(data) * data.images[0].nbytes > headroom * free:
        return data  # too big: batches are copied from host memory as they are needed
    images = data.images if data.rows is None else data.images[np.asarray(data.rows)]
    labels = data.labels if data.rows is None else np.asarray(data.labels)[np.asarray(data.rows)]
    # np.array copies out of a read-only memory map, which torch.from_numpy would warn about
    return ImageSet(torch.from_numpy(np.array(images)).to(device), torch.from_numpy(np.array(labels)).to(device))


def gather(data: ImageSet, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images and labels at `index`, as CPU tensors or on the data's device."""
    if data.rows is not None:
        index = torch.from_numpy(np.asarray(data.rows))[index]
    if isinstance(data.images, torch.Tensor):
        index = index.to(data.images.device)
        return data.images[index], torch.as_tensor(data.labels)[index]
    idx = index.numpy()
    # fancy indexing copies just these rows out of the memory map, no full read
    return torch.from_numpy(np.ascontiguousarray(data.images[idx])), torch.from_numpy(np.asarray(data.labels[idx]))


def step_count(rows: int, batch_size: int) -> int:
    """Optimiser steps per epoch; a last batch of one image is dropped because BatchNorm cannot train on it."""
    steps, last = divmod(rows, batch_size)
    return steps + (1 if last > 1 else 0)


def batch_slices(rows: int, batch_size: int) -> Sequence[slice]:
    """The position slices of each step's batch within an epoch's order."""
    return [slice(s * batch_size, min(rows, (s + 1) * batch_size)) for s in range(step_count(rows, batch_size))]
