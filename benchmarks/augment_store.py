"""Time the batched 300k-sample augmentation store against a per-image Pillow path, in one run.

The reference does what classic torchvision transforms do: one PIL image at a time through flip,
pad + random crop, resize + random crop, rotate, and ImageEnhance brightness/contrast/colour plus
an HSV hue shift. Both produce the same 6N-image copy-major uint8 array; the ratio is what counts
(absolute times move with whatever else the machine is doing).

    python benchmarks/augment_store.py [--data PATH] [--subset N] [--seed S] [--threads T]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from budgetnet.data import load_cifar, load_or_build_store
from budgetnet.data.augment import COPIES, AugmentRecipe
from budgetnet.data.store import augment_into

SHARED = Path(__file__).resolve().parents[2] / "shared" / "cifar10"


def _hue(image: Image.Image, shift: float) -> Image.Image:
    h, s, v = image.convert("HSV").split()
    h = Image.fromarray((np.asarray(h, dtype=np.uint8) + np.uint8(round(shift * 256) % 256)), "L")
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def reference(images: np.ndarray, seed: int, recipe: AugmentRecipe) -> np.ndarray:
    """The six copies, one Pillow image at a time, parameters drawn per call from torch as torchvision does."""
    torch.manual_seed(seed)
    n = len(images)
    out = np.empty((COPIES * n, 3, 32, 32), np.uint8)
    low, high = recipe.jitter

    def maybe_flip(image: Image.Image) -> Image.Image:
        return ImageOps.mirror(image) if torch.rand(1) < recipe.flip_p else image

    def offset(limit: int) -> tuple[int, int]:
        return (int(torch.randint(0, limit + 1, size=(1,)).item()), int(torch.randint(0, limit + 1, size=(1,)).item()))

    for i, chw in enumerate(images):
        image = Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0)))
        copies = [image, ImageOps.mirror(image)]
        padded = ImageOps.expand(maybe_flip(image), recipe.pad, 0)
        y, x = offset(2 * recipe.pad)
        copies.append(padded.crop((x, y, x + 32, y + 32)))
        big = maybe_flip(image).resize((recipe.resize, recipe.resize), Image.Resampling.BILINEAR)
        y, x = offset(recipe.resize - 32)
        copies.append(big.crop((x, y, x + 32, y + 32)))
        angle = float(torch.empty(1).uniform_(-recipe.max_angle, recipe.max_angle).item())
        copies.append(maybe_flip(image).rotate(angle, Image.Resampling.BILINEAR, fillcolor=0))
        jittered = maybe_flip(image)
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            jittered = enhancer(jittered).enhance(float(torch.empty(1).uniform_(low, high).item()))
        copies.append(_hue(jittered, float(torch.empty(1).uniform_(-recipe.max_hue, recipe.max_hue).item())))
        for copy, result in enumerate(copies):
            out[copy * n + i] = np.asarray(result).transpose(2, 0, 1)
    return out


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())  # the store build fsyncs too


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED, help="CIFAR-10 source (default ../shared/cifar10)")
    parser.add_argument("--subset", type=int, default=None, help="first N training images (default all 50,000)")
    parser.add_argument("--seed", type=int, default=0)
    # one thread by default: on a 2-core machine shared with other jobs, two OpenMP threads were 30x slower than
    # one (each waits for the other whenever a core is taken away); the Pillow path always uses one core
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the batched path (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="augbench-") as tmp:
        tmp = Path(tmp)
        data = load_cifar(args.data, cache_dir=tmp / "cache")
        images = data.train_images[: args.subset]
        n, recipe = len(images), AugmentRecipe()
        # Touch an output-sized buffer once and free it, so neither timed path pays for the first use of fresh
        # memory: on this VM that costs ~2.5 s per GB, and only whichever path ran first would pay it
        np.ones((COPIES * n, 3, 32, 32), np.uint8)

        start = time.perf_counter()
        batched = np.empty((COPIES * n, 3, 32, 32), np.uint8)
        augment_into(batched, images, args.seed, recipe, torch.device("cpu"), progress=False)
        t_batched = time.perf_counter() - start

        start = time.perf_counter()
        load_or_build_store(data, out_dir=tmp / "store", seed=args.seed, subset=n, progress=False)
        t_store = time.perf_counter() - start
        del batched

        start = time.perf_counter()
        per_image = reference(images, args.seed, recipe)
        t_ref = time.perf_counter() - start
        _save(tmp / "reference.npy", per_image)
        t_ref_saved = time.perf_counter() - start

    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True, text=True).stdout.split(":")[-1]
    print(f"images: {n} originals -> {COPIES * n} samples, seed {args.seed}")
    print(f"cpu: {cpu.strip() or platform.processor()}, torch threads {torch.get_num_threads()}, "
          f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"pillow {Image.__version__}")
    print(f"batched, in memory:          {t_batched:8.2f} s  ({COPIES * n / t_batched:,.0f} samples/s)")
    print(f"per-image Pillow, in memory: {t_ref:8.2f} s  ({COPIES * n / t_ref:,.0f} samples/s)")
    print(f"ratio (augmentation work):   {t_ref / t_batched:8.1f}x")
    print(f"store build, end to end:     {t_store:8.2f} s  (load_or_build_store: memmap write, fsync, sha256, stats)")
    print(f"per-image Pillow + np.save:  {t_ref_saved:8.2f} s")
    print(f"ratio (end to end):          {t_ref_saved / t_store:8.1f}x")


if __name__ == "__main__":
    main()
