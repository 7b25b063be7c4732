"""Training speed with the C library's memory defaults against budgetnet's kept freed memory, in one run.

`budgetnet train` on a CPU keeps freed memory in the process (`budgetnet.train.heap`). That is a setting of the
whole process, so each side runs in a fresh interpreter, the two alternating over several rounds; the best
round of each is compared, as the machine's noise only ever slows a round down. Each trains the named recipe
as it is (ghost BatchNorm, optimiser, EMA, Lookahead, augmentation, precision choice) on its network, from the
same initial weights, on random uint8 images, for `--steps` steps after one untimed step, in an epoch at the
recipe's low-res size (where it has one) and in one at full size. Each side's peak resident memory is printed too.

    python benchmarks/heap_speed.py [--arch resnet-cpu-small] [--recipe cpu-small] [--steps 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import numpy as np
import torch

from budgetnet.errors import BudgetnetError
from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model
from budgetnet.presets import resolve_spec
from budgetnet.train.batches import ImageSet
from budgetnet.train.distributed import SINGLE
from budgetnet.train.heap import keep_freed_memory
from budgetnet.train.loop import Setup, train_one_epoch
from budgetnet.train.precision import choose_precision
from budgetnet.train.recipe import get_recipe
from budgetnet.train.session import batch_augmentation, build_trainee
from synthetic import cifar_normalizer, random_images

SIDES = ("defaults", "kept")


def epoch_speeds(arch: str, recipe_name: str, precision: str, steps: int) -> dict[str, float]:
    """Training images/s of this process in a low-res epoch (if the recipe has one) and a full-size one."""
    _, spec = resolve_spec(arch)
    recipe = get_recipe(recipe_name).replace(precision=choose_precision(precision, torch.device("cpu"))[0])
    batch = recipe.batch_size
    images, labels = random_images(batch * (steps + 1))
    epochs = {"full": recipe.epochs - 1}
    if recipe.low_res_epochs:
        epochs = {f"{recipe.low_res_size} px": 0, **epochs}
    speeds = {}
    for name, epoch in epochs.items():
        trainee = build_trainee(spec, recipe, torch.device("cpu"), SINGLE, None)
        for rows in (np.arange(batch), np.arange(batch, len(images))):  # one untimed step, then the timed ones
            setup = Setup(recipe, ImageSet(images, labels, rows=rows), cifar_normalizer(), torch.device("cpu"),
                          augment=batch_augmentation(recipe))
            done = train_one_epoch(trainee, setup, epoch, show_bar=False)
        speeds[name] = done.seen / done.seconds
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet-cpu-small")
    parser.add_argument("--recipe", default="cpu-small")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per epoch and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both sides, alternating")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # set for the fresh interpreters
    args = parser.parse_args()
    try:  # in this process, so that a bad name is one line here rather than a traceback from a fresh one
        resolve_spec(args.arch)
        get_recipe(args.recipe)
    except BudgetnetError as e:
        print(f"heap_speed: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    common = ["--arch", args.arch, "--recipe", args.recipe, "--precision", args.precision, "--steps", str(args.steps)]
    if args.side:
        if args.side == "kept" and not keep_freed_memory():
            sys.exit("this C library is not glibc: there is no setting to compare")
        speeds = epoch_speeds(args.arch, args.recipe, args.precision, args.steps)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
        print(json.dumps({"speeds": speeds, "peak_mb": peak_mb}))
        return
    best: dict[str, dict[str, float]] = {side: {} for side in SIDES}
    peak_mb = dict.fromkeys(SIDES, 0.0)
    for _ in range(args.rounds):
        for side in SIDES:
            done = subprocess.run([sys.executable, __file__, *common, "--side", side], capture_output=True, text=True)
            if done.returncode:
                sys.exit(done.stderr.strip() or f"the {side} side failed")
            report = json.loads(done.stdout)
            peak_mb[side] = max(peak_mb[side], report["peak_mb"])
            for epoch, speed in report["speeds"].items():
                best[side][epoch] = max(best[side].get(epoch, 0.0), speed)
    precision, _, why = choose_precision(args.precision, torch.device("cpu"))
    print(f"{args.arch}, {args.recipe} recipe, {precision} ({why}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; CPU: {cpu_model()}, {cpu_kind(cpu_flags())}")
    print(f"best of {args.rounds} rounds of {args.steps} steps, training images/s")
    for epoch in best["defaults"]:
        print(f"{epoch:>6}: defaults {best['defaults'][epoch]:7.1f}  kept {best['kept'][epoch]:7.1f}  "
              f"{best['kept'][epoch] / best['defaults'][epoch]:.2f}x")
    print(f"peak resident memory: defaults {peak_mb['defaults']:.0f} MB, kept {peak_mb['kept']:.0f} MB")


if __name__ == "__main__":
    main()
