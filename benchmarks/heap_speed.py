"""Training speed with the C library's memory defaults against budgetnet's kept freed memory, in one run.

`budgetnet train` on a CPU keeps freed memory in the process (`budgetnet.train.heap`). That is a setting of the
whole process, so each side runs in a fresh interpreter, the two alternating over several rounds; the best
round of each is compared, as the machine's noise only ever slows a round down. Each trains the named recipe
as it is (ghost BatchNorm, optimiser, EMA, Lookahead, augmentation, precision choice) on its network, from the
same initial weights, on random uint8 images, for `--steps` steps after one untimed step, in an epoch at the
recipe's low-res size (where it has one), in one at full size, and in that full-size epoch again after a test
pass with the recipe's views over `--eval-images` random images, as a run does between epochs. Each side's
memory faulted in per timed step (the kernel's minor page faults) and peak resident memory are printed too.

    python benchmarks/heap_speed.py [--arch resnet-cpu-small] [--recipe cpu-small] [--steps 5] [--rounds 2] \\
        [--eval-images 2048]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from budgetnet.cli.argtypes import positive_int
from budgetnet.errors import BudgetnetError
from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model
from budgetnet.presets import resolve_spec
from budgetnet.train.batches import ImageSet
from budgetnet.train.distributed import SINGLE
from budgetnet.train.evaluation import evaluate
from budgetnet.train.heap import keep_freed_memory
from budgetnet.train.loop import Setup, train_one_epoch
from budgetnet.train.precision import choose_precision
from budgetnet.train.recipe import get_recipe
from budgetnet.train.session import batch_augmentation, build_trainee
from synthetic import cifar_normalizer, random_images

SIDES = ("defaults", "kept")


def faulted_mb() -> float:
    """Memory this process has faulted in so far (minor page faults of 4 KiB pages), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt * 4 / 1024


def epoch_speeds(arch: str, recipe_name: str, precision: str, steps: int, eval_images: int) -> dict[str, dict]:
    """Training images/s and MB faulted in per step of this process in a low-res epoch (if the recipe has one),
    a full-size one, and the full-size one again after a test pass; and that test pass's seconds."""
    _, spec = resolve_spec(arch)
    recipe = get_recipe(recipe_name).replace(precision=choose_precision(precision, torch.device("cpu"))[0])
    batch, device = recipe.batch_size, torch.device("cpu")
    images, labels = random_images(batch * (steps + 1))
    test = ImageSet(*random_images(eval_images, seed=1))
    epochs = {"full": recipe.epochs - 1}
    if recipe.low_res_epochs:
        epochs = {f"{recipe.low_res_size} px": 0, **epochs}
    report: dict[str, dict] = {"speeds": {}, "faulted_mb": {}}
    for name, epoch in epochs.items():
        trainee = build_trainee(spec, recipe, device, SINGLE, None)
        rounds = [(name, np.arange(batch)), (name, np.arange(batch, len(images)))]  # one untimed step, then timed
        if name == "full":
            rounds.append(("full, after a test pass", np.arange(batch, len(images))))
        for label, rows in rounds:
            if label != name:
                started = time.perf_counter()
                evaluate(trainee.evaluated, test, cifar_normalizer(), device, recipe.precision, tta=recipe.tta,
                         tta_shift=recipe.tta_shift)
                report["test_pass_seconds"] = time.perf_counter() - started
            setup = Setup(recipe, ImageSet(images, labels, rows=rows), cifar_normalizer(), device,
                          augment=batch_augmentation(recipe))
            before = faulted_mb()
            done = train_one_epoch(trainee, setup, epoch, show_bar=False)
            report["faulted_mb"][label] = (faulted_mb() - before) / len(rows) * batch
            report["speeds"][label] = done.seen / done.seconds
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet-cpu-small")
    parser.add_argument("--recipe", default="cpu-small")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--steps", type=positive_int, default=5, help="timed training steps per epoch and round")
    parser.add_argument("--rounds", type=positive_int, default=2, help="rounds of both sides, alternating")
    parser.add_argument("--eval-images", type=positive_int, default=2048, help="random images in the test pass")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # set for the fresh interpreters
    args = parser.parse_args()
    try:  # in this process, so that a bad name is one line here rather than a traceback from a fresh one
        resolve_spec(args.arch)
        get_recipe(args.recipe)
    except BudgetnetError as e:
        print(f"heap_speed: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    common = ["--arch", args.arch, "--recipe", args.recipe, "--precision", args.precision, "--steps", str(args.steps),
              "--eval-images", str(args.eval_images)]
    if args.side:
        if args.side == "kept" and not keep_freed_memory():
            sys.exit("this C library is not glibc: there is no setting to compare")
        report = epoch_speeds(args.arch, args.recipe, args.precision, args.steps, args.eval_images)
        report["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
        print(json.dumps(report))
        return
    best: dict[str, dict[str, float]] = {side: {} for side in SIDES}
    faulted: dict[str, dict[str, list[float]]] = {side: {} for side in SIDES}
    test_pass = dict.fromkeys(SIDES, float("inf"))
    peak_mb = dict.fromkeys(SIDES, 0.0)
    for _ in range(args.rounds):
        for side in SIDES:
            done = subprocess.run([sys.executable, __file__, *common, "--side", side], capture_output=True, text=True)
            if done.returncode:
                sys.exit(done.stderr.strip() or f"the {side} side failed")
            report = json.loads(done.stdout)
            peak_mb[side] = max(peak_mb[side], report["peak_mb"])
            test_pass[side] = min(test_pass[side], report["test_pass_seconds"])
            for epoch, speed in report["speeds"].items():
                best[side][epoch] = max(best[side].get(epoch, 0.0), speed)
                faulted[side].setdefault(epoch, []).append(report["faulted_mb"][epoch])
    precision, _, why = choose_precision(args.precision, torch.device("cpu"))
    print(f"{args.arch}, {args.recipe} recipe, {precision} ({why}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; CPU: {cpu_model()}, {cpu_kind(cpu_flags())}")
    print(f"best of {args.rounds} rounds of {args.steps} steps: training images/s (MB faulted in per step, mean)")
    for epoch, speed in best["defaults"].items():
        mb = {side: sum(faulted[side][epoch]) / args.rounds for side in SIDES}
        print(f"{epoch:>23}: defaults {speed:7.1f} ({mb['defaults']:5.0f} MB)  kept {best['kept'][epoch]:7.1f} "
              f"({mb['kept']:5.0f} MB)  {best['kept'][epoch] / speed:.2f}x")
    print(f"test pass over {args.eval_images} images: defaults {test_pass['defaults']:.2f} s, "
          f"kept {test_pass['kept']:.2f} s")
    print(f"peak resident memory: defaults {peak_mb['defaults']:.0f} MB, kept {peak_mb['kept']:.0f} MB")


if __name__ == "__main__":
    main()
