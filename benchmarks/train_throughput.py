"""Training and eval throughput: budgetnet's trainer against a plain reference loop, in one run.

The reference trains the way common CIFAR repositories do: fp32, eager, NCHW, and a torch
DataLoader yielding samples that are transformed one image at a time (Pillow flip and
pad-4 crop, then to-tensor and normalise), as classic torchvision transforms do.
budgetnet slices uint8 batches from one array, augments the whole batch with tensor ops,
normalises on the device, and runs channels_last, with bf16 autocast where the CPU runs bf16
natively and fp32 elsewhere (`--precision auto`, as `budgetnet train` chooses). Both train
the same architecture from the same initial weights for the same number of steps. Every
reference runs first, with the C library's memory defaults; budgetnet's path then keeps freed
memory for reuse, as `budgetnet train` does on a CPU (`budgetnet.train.heap`). Images
are random uint8 (throughput does not depend on their content). The default network is the
cpu recipe's resnet-cpu, so the script finishes in a few minutes on either CPU kind.

    python benchmarks/train_throughput.py [--arch resnet-cpu] [--steps 6] [--precision auto] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from budgetnet.data.augment import online_augment
from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model
from budgetnet.model import build_model
from budgetnet.presets import resolve_spec
from budgetnet.train.batches import ImageSet
from budgetnet.train.evaluation import evaluate
from budgetnet.train.heap import keep_freed_memory
from budgetnet.train.loop import Setup, Trainee, train_one_epoch
from budgetnet.train.precision import choose_precision
from budgetnet.train.recipe import Recipe
from synthetic import MEAN, STD, cifar_normalizer, random_images


class PerImageDataset(torch.utils.data.Dataset):
    """Classic per-sample pipeline: PIL image, random flip, pad-4 random crop, to tensor, normalise."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, train: bool) -> None:
        self.images, self.labels, self.train = images, labels, train
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[i].transpose(1, 2, 0))
        if self.train:
            if torch.rand(1).item() < 0.5:
                image = ImageOps.mirror(image)
            image = ImageOps.expand(image, border=4, fill=0)
            x, y = torch.randint(0, 9, (2,)).tolist()
            image = image.crop((x, y, x + 32, y + 32))
        tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (tensor - self.mean) / self.std, int(self.labels[i])


def reference_train(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int, steps: int) -> float:
    """Images/s of the reference fp32 NCHW loop over `steps` batches."""
    loader = torch.utils.data.DataLoader(PerImageDataset(images, labels, True), batch_size=batch, shuffle=True,
                                         num_workers=0, drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    start = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        if step == steps:
            break
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return batch * steps / (time.perf_counter() - start)


def reference_eval(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int) -> float:
    """Images/s of fp32 NCHW inference through a per-image DataLoader."""
    loader = torch.utils.data.DataLoader(PerImageDataset(images, labels, False), batch_size=batch, num_workers=0)
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for x, _ in loader:
            model(x)
    return len(labels) / (time.perf_counter() - start)


def budgetnet_train(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int, steps: int,
                    precision: str) -> float:
    """Images/s of budgetnet's train_one_epoch over exactly `steps` batches."""
    device = torch.device("cpu")
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    recipe = Recipe(batch_size=batch, lr=0.01, epochs=1, augment="online", precision=precision)
    data = ImageSet(images, labels, rows=np.arange(batch * steps))
    setup = Setup(recipe, data, cifar_normalizer(), device, augment=online_augment)
    done = train_one_epoch(Trainee(model, model, optimizer), setup, 0, show_bar=False)
    return done.seen / done.seconds


def budgetnet_eval(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int, precision: str) -> float:
    """Images/s of budgetnet's evaluate."""
    model = model.to(memory_format=torch.channels_last)
    start = time.perf_counter()
    evaluate(model, ImageSet(images, labels), cifar_normalizer(), torch.device("cpu"), precision, batch_size=batch)
    return len(labels) / (time.perf_counter() - start)


def inputs(arch: str, batch: int, steps: int, warmup: int) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """The initial model and the random images and labels for one batch size; the same on every call."""
    _, spec = resolve_spec(arch)
    images, labels = random_images(batch * (steps + warmup))
    torch.manual_seed(0)
    return build_model(spec), images, labels


def measure_reference(arch: str, batch: int, steps: int, warmup: int) -> dict[str, float]:
    """Train and eval images/s of the reference loop at one batch size, after `warmup` untimed steps."""
    initial, images, labels = inputs(arch, batch, steps, warmup)
    reference_train(copy.deepcopy(initial), images, labels, batch, warmup)  # oneDNN kernel selection, allocator
    eval_n = min(len(images), 2048)
    return {"reference_train": reference_train(copy.deepcopy(initial), images, labels, batch, steps),
            "reference_eval": reference_eval(copy.deepcopy(initial), images[:eval_n], labels[:eval_n], 256)}


def measure_budgetnet(arch: str, batch: int, steps: int, warmup: int, precision: str) -> dict[str, float]:
    """Train and eval images/s of budgetnet's loop at one batch size, after `warmup` untimed steps."""
    initial, images, labels = inputs(arch, batch, steps, warmup)
    budgetnet_train(copy.deepcopy(initial), images, labels, batch, warmup, precision)
    eval_n = min(len(images), 2048)
    return {"budgetnet_train": budgetnet_train(copy.deepcopy(initial), images, labels, batch, steps, precision),
            "budgetnet_eval": budgetnet_eval(copy.deepcopy(initial), images[:eval_n], labels[:eval_n], 256, precision)}


def measure(arch: str, batches: list[int], steps: int, warmup: int, precision: str) -> tuple[dict, bool]:
    """Both paths' images/s per batch size, and whether freed memory was kept: every reference first, with the
    C library's defaults, as a plain script runs; then budgetnet's, which keeps freed memory as training does
    (`budgetnet.train.heap`; a setting of the whole process, so it cannot come first)."""
    results = {b: measure_reference(arch, b, steps, warmup) for b in batches}
    kept = keep_freed_memory()
    for b in batches:
        result = results[b]
        result.update(measure_budgetnet(arch, b, steps, warmup, precision))
        result["train_ratio"] = result["budgetnet_train"] / result["reference_train"]
        result["eval_ratio"] = result["budgetnet_eval"] / result["reference_eval"]
    return results, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet-cpu")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per path and batch size")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both paths (default: torch's)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="budgetnet's precision (default auto: bf16 where the CPU has it natively, as train does)")
    parser.add_argument("--json", action="store_true", help="print one JSON object; speedup = the largest batch's ratio")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precision, warning, why = choose_precision(args.precision, torch.device("cpu"))
    results, kept = measure(args.arch, args.batches, args.steps, args.warmup, precision)
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_model(),
           "cpu_kind": cpu_kind(cpu_flags()), "precision": precision, "precision_why": why,
           "keep_freed_memory": kept}
    if args.json:
        print(json.dumps({"arch": args.arch, "steps": args.steps, "env": env,
                          "speedup": results[max(args.batches)]["train_ratio"],
                          "results": {str(b): r for b, r in results.items()}}, indent=2))
        return
    if warning:
        print(f"warning: {warning}")
    print(f"{args.arch}, {args.steps} timed steps, torch {env['torch']}, {env['threads']} threads, budgetnet in "
          f"{precision} ({why})")
    print(f"CPU: {env['cpu']}, {env['cpu_kind']}; budgetnet keeps freed memory: {'yes' if kept else 'no'}")
    print(f"{'batch':>5}  {'reference train':>15}  {'budgetnet train':>15}  {'ratio':>5}  "
          f"{'reference eval':>14}  {'budgetnet eval':>14}  {'ratio':>5}")
    for b, r in results.items():
        print(f"{b:>5}  {r['reference_train']:>11.0f} im/s  {r['budgetnet_train']:>11.0f} im/s  {r['train_ratio']:>5.2f}  "
              f"{r['reference_eval']:>10.0f} im/s  {r['budgetnet_eval']:>10.0f} im/s  {r['eval_ratio']:>5.2f}")


if __name__ == "__main__":
    main()
