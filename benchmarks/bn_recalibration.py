"""Would recomputing BatchNorm statistics after training raise held-out accuracy?

A run reports its averaged weights (EMA, Lookahead) with running statistics copied from the trained model.
This script takes runs trained with `--val-split`, recomputes every BatchNorm's statistics of the reported
weights from the run's own training images (never the held-out ones, never the test set), plain or with the
`shift` augmentation, and evaluates each on the held-out images as the recipe does (6 views: single view,
flip pair and 6 views are printed):

    python benchmarks/bn_recalibration.py runs/tune/zen4-a18 runs/tune/zen4-a6 --data ../shared/cifar10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint, model_from_checkpoint, resolve_checkpoint
from budgetnet.data import load_cifar
from budgetnet.data.augment import shift_augment
from budgetnet.errors import BudgetnetError, DataError
from budgetnet.rundir import RunDir
from budgetnet.train.batches import ImageSet, Normalizer, gather
from budgetnet.train.evaluation import evaluate
from budgetnet.train.precision import autocast
from budgetnet.train.prepare import held_out_set

BATCH = 500  # images per forward pass while recomputing; statistics are cumulative, so it changes nothing


@torch.no_grad()
def recalibrate(model: nn.Module, images: ImageSet, rows: torch.Tensor, normalizer: Normalizer, precision: str,
                generator: torch.Generator | None) -> None:
    """Replace every BatchNorm's running statistics by the plain average over `rows` of `images` (each batch
    shifted and flipped first when `generator` is given)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over every batch
    model.train()
    for start in range(0, len(rows), BATCH):
        batch, _ = gather(images, rows[start : start + BATCH])
        if generator is not None:
            batch = shift_augment(batch, generator, rows[start : start + BATCH])
        with autocast(torch.device("cpu"), precision):
            model(normalizer(batch))
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    model.eval()


def measure(run_path: str, data, images: int, seed: int) -> dict:
    """Held-out accuracy of one run's reported weights as saved and with recomputed statistics."""
    checkpoint_path = resolve_checkpoint(run_path)
    checkpoint = load_checkpoint(checkpoint_path, needs=FOR_INFERENCE)
    val_rows = np.asarray(RunDir.of(checkpoint_path).read_val_indices())
    if len(val_rows) == 0:
        raise DataError(f"{run_path} held nothing out: train it with --val-split")
    originals = checkpoint.recipe.subset or len(data.train_labels)
    train_rows = torch.from_numpy(np.setdiff1d(np.arange(originals), val_rows))
    generator = torch.Generator().manual_seed(seed)
    rows = train_rows[torch.randperm(len(train_rows), generator=generator)[:images]]
    val = held_out_set(data, val_rows)
    normalizer = Normalizer(tuple(checkpoint.data.mean), tuple(checkpoint.data.std))
    precision = checkpoint.recipe.precision
    train = ImageSet(data.train_images, data.train_labels)
    result = {"run": run_path, "val_images": len(val_rows), "recalibration_images": len(rows)}
    for variant in ("as saved", "recomputed", "recomputed, shifted"):
        model = model_from_checkpoint(checkpoint).to(memory_format=torch.channels_last)
        started = time.perf_counter()
        if variant != "as saved":
            recalibrate(model, train, rows, normalizer, precision, generator if "shifted" in variant else None)
        seconds = time.perf_counter() - started
        r = evaluate(model, val, normalizer, torch.device("cpu"), precision, tta=True, tta_shift=1)
        result[variant] = {"single_view": r.single_view_accuracy, "flip_pair": r.flip_accuracy,
                           "six_views": r.accuracy, "loss": r.loss, "seconds": seconds}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories trained with --val-split")
    parser.add_argument("--data", required=True, help="the dataset the runs were trained on")
    parser.add_argument("--images", type=int, default=10_000, help="training images to recompute from (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the choice of images and their shifts")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    try:
        data = load_cifar(args.data)
        results = [measure(run, data, args.images, args.seed) for run in args.runs]
    except BudgetnetError as e:
        parser.error(str(e))  # one line and exit code 2
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'run':32s} {'statistics':22s} {'single':>7s} {'flip':>7s} {'6 views':>7s} {'loss':>7s}")
    for result in results:
        for variant in ("as saved", "recomputed", "recomputed, shifted"):
            r = result[variant]
            print(f"{Path(result['run']).name:32s} {variant:22s} {100 * r['single_view']:7.2f} "
                  f"{100 * r['flip_pair']:7.2f} {100 * r['six_views']:7.2f} {r['loss']:7.4f}")
    gains = [100 * (r["recomputed"]["flip_pair"] - r["as saved"]["flip_pair"]) for r in results]
    print(f"flip-pair gain of recomputed statistics: mean {np.mean(gains):+.2f} points over {len(gains)} run(s)")


if __name__ == "__main__":
    main()
