"""Training images/s of budgetnet's loop eager against torch.compile, in one run, on this machine.

Both paths run `train_one_epoch` with the same recipe values as `--recipe cpu` (batch 512, Nesterov SGD,
label smoothing, shifts with alternating flips, precision chosen by `--precision auto`), from the same
initial weights, over random uint8 images (speed does not depend on their content). The compiled path's
first steps, where torch.compile traces and builds its kernels, are timed apart and excluded from its rate.
Freed memory is kept for reuse on both paths, as `budgetnet train` keeps it (`budgetnet.train.heap`).

    python benchmarks/compile_speed.py [--arch resnet-cpu] [--batch 512] [--steps 6] [--warmup 2] [--precision auto]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from budgetnet.data.augment import online_augmentation
from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model
from budgetnet.model import build_model
from budgetnet.presets import resolve_spec
from budgetnet.train.batches import ImageSet
from budgetnet.train.heap import keep_freed_memory
from budgetnet.train.loop import Setup, Trainee, train_one_epoch
from budgetnet.train.optimizer import build_optimizer
from budgetnet.train.precision import choose_precision
from budgetnet.train.recipe import get_recipe
from synthetic import cifar_normalizer, random_images


def images_per_second(model: torch.nn.Module, compiled: bool, images: np.ndarray, labels: np.ndarray,
                      batch: int, steps: int, warmup: int, precision: str) -> tuple[float, float]:
    """(seconds of the `warmup` untimed steps, images/s of the next `steps`) for one path."""
    model = model.to(memory_format=torch.channels_last)
    recipe = get_recipe("cpu").replace(batch_size=batch, epochs=1, warmup_epochs=0.0, precision=precision)
    optimizer = build_optimizer(model, recipe)
    trained = torch.compile(model) if compiled else model
    trainee = Trainee(model, trained, optimizer)
    rates = []
    for part, count in enumerate((warmup, steps)):
        rows = np.arange(batch * count) + (batch * warmup if part else 0)
        setup = Setup(recipe, ImageSet(images, labels, rows=rows), cifar_normalizer(), torch.device("cpu"),
                      augment=online_augmentation("shift"))
        start = time.perf_counter()
        done = train_one_epoch(trainee, setup, part, show_bar=False)
        rates.append((time.perf_counter() - start, done.seen / done.seconds))
    return rates[0][0], rates[1][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet-cpu")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per path")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="as budgetnet train's --precision (default: auto, bf16 where the CPU has it natively)")
    args = parser.parse_args()
    precision, _, why = choose_precision(args.precision, torch.device("cpu"))
    keep_freed_memory()
    _, spec = resolve_spec(args.arch)
    images, labels = random_images(args.batch * (args.steps + args.warmup))
    torch.manual_seed(0)
    initial = build_model(spec)
    results = {name: images_per_second(copy.deepcopy(initial), name == "compiled", images, labels, args.batch,
                                       args.steps, args.warmup, precision) for name in ("eager", "compiled")}
    print(f"{args.arch}, batch {args.batch}, {args.steps} timed steps after {args.warmup}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {precision} ({why})")
    print(f"CPU: {cpu_model()}, {cpu_kind(cpu_flags())}")
    for name, (warm_seconds, rate) in results.items():
        print(f"{name:>8}: {rate:6.1f} images/s (first {args.warmup} steps: {warm_seconds:.1f} s)")
    print(f"compiled / eager: {results['compiled'][1] / results['eager'][1]:.2f}")


if __name__ == "__main__":
    main()
