"""Real-data evidence on this machine: a scaled-down Table 1 run, plus paper-recipe throughput and extrapolation.

    python benchmarks/train_cpu.py [--data ../shared/cifar10] [--arch approach-2a] [--subset 2000] [--epochs 5]

1. Measures training and evaluation images/s of `--arch` with the paper's recipe (batch 32, fp32,
   channels_last) on real CIFAR-10 images, and extrapolates the wall time of the full regimen
   (50 epochs over the 300k offline store, plus a 10k-image test pass per epoch).
2. Runs `budgetnet reproduce --archs ARCH --seeds 1 --epochs N --subset S` on the real data, then
   `budgetnet eval` and `budgetnet plot` on that run, and reports the CPU time it all took.
Prints a JSON summary last. Not a test: it takes tens of minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from budgetnet.cli.main import main as budgetnet
from budgetnet.data import load_cifar
from budgetnet.model import build_model
from budgetnet.presets import get_preset
from budgetnet.train.batches import ImageSet, Normalizer
from budgetnet.train.evaluation import evaluate
from budgetnet.train.loop import Setup, Trainee, train_one_epoch
from budgetnet.train.recipe import PAPER_EPOCHS, PAPER_SAMPLES, get_recipe

SHARED = Path(__file__).resolve().parents[2] / "shared" / "cifar10"


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def throughput(arch: str, data, steps: int, eval_images: int) -> dict:
    """Paper-recipe training and evaluation images/s of `arch` on real images (warm-up excluded)."""
    recipe = get_recipe("paper").replace(augment="none", epochs=1)
    torch.manual_seed(0)
    model = build_model(get_preset(arch).spec).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    norm = Normalizer((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    cpu = torch.device("cpu")
    n = recipe.batch_size * steps
    warm = ImageSet(data.train_images[:64], data.train_labels[:64])
    trainee = Trainee(model, model, optimizer)
    train_one_epoch(trainee, Setup(recipe, warm, norm, cpu), 0, show_bar=False)
    timed = ImageSet(data.train_images[:n], data.train_labels[:n])
    start = time.perf_counter()
    done = train_one_epoch(trainee, Setup(recipe, timed, norm, cpu), 0, show_bar=False)
    train_ips = done.seen / (time.perf_counter() - start)
    start = time.perf_counter()
    evaluate(model, ImageSet(data.test_images[:eval_images], data.test_labels[:eval_images]), norm, cpu)
    eval_ips = eval_images / (time.perf_counter() - start)
    full_s = PAPER_EPOCHS * (PAPER_SAMPLES / train_ips + len(data.test_labels) / eval_ips)
    return {"arch": arch, "batch_size": recipe.batch_size, "train_steps": steps, "train_images_per_s": train_ips,
            "eval_images_per_s": eval_ips, "full_reproduction_hours": full_s / 3600}


def main() -> None:
    """Measure, train, evaluate, plot, and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED), help="CIFAR-10 (default ../shared/cifar10)")
    parser.add_argument("--arch", default="approach-2a")
    parser.add_argument("--subset", type=int, default=1500, help="original training images (x6 with the store)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60, help="timed training steps for the throughput figure")
    parser.add_argument("--out", default="/tmp/budgetnet-train-cpu")
    parser.add_argument("--throughput-only", action="store_true", help="skip the training run (step 2)")
    args = parser.parse_args()

    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    data = load_cifar(args.data)
    speed = throughput(args.arch, data, args.steps, eval_images=2000)
    speed["load_average"] = os.getloadavg()
    print(json.dumps(speed), flush=True)
    if args.throughput_only:
        return

    out = Path(args.out)
    code = budgetnet(["reproduce", "--data", args.data, "--archs", args.arch, "--seeds", "1", "--epochs",
                      str(args.epochs), "--subset", str(args.subset), "--out", str(out), "--quiet"])
    run = out / args.arch / "seed-0"
    code = code or budgetnet(["eval", str(run)]) or budgetnet(["plot", str(run)])
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    summary = {
        "command": f"python benchmarks/train_cpu.py --arch {args.arch} --subset {args.subset} --epochs {args.epochs}",
        "exit_code": code,
        "cpu": json.loads((run / "env.json").read_text())["cpu"],
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": os.getloadavg(),  # other jobs on the machine slow every figure here
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "seeds": 1,
        "throughput": speed,
        "recipe": json.loads((run / "recipe.json").read_text()),
        "train_rows_per_epoch": json.loads((run / "data.json").read_text())["train_rows"],
        "per_epoch_test_acc": [round(100 * m["test_acc"], 2) for m in metrics],
        "per_epoch_train_acc": [round(100 * m["train_acc"], 2) for m in metrics],
        "per_epoch_seconds": [round(m["seconds"], 1) for m in metrics],
        "final_test_acc": round(100 * metrics[-1]["test_acc"], 2),
        "cpu_seconds": round(cpu_seconds() - cpu0, 1),
        "wall_seconds": round(time.perf_counter() - wall0, 1),
        "outputs": [str(run / "curves.png"), str(run / "confusion.png"), str(out / "results.md")],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
