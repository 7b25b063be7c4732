"""Evaluating a checkpoint on a test set (or its run's validation split): accuracy, per-class accuracy and the
confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint, model_from_checkpoint, resolve_checkpoint
from budgetnet.errors import DataError
from budgetnet.rundir import RunDir
from budgetnet.runrecord import Checkpoint
from budgetnet.train.batches import ImageSet, Normalizer
from budgetnet.train.evaluation import evaluate
from budgetnet.train.prepare import held_out_set
from budgetnet.train.recipe import tta_text


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    flat = np.asarray(labels, dtype=np.int64) * num_classes + np.asarray(predictions, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def evaluate_checkpoint(checkpoint: Checkpoint, data: Any, device: torch.device, tta: bool = False,
                        tta_shift: int = 0, val_indices: list[int] | None = None) -> dict[str, Any]:
    """Loss, accuracy, per-class accuracy and confusion matrix of a loaded checkpoint on the test set, or, given
    `val_indices`, on those held-out training images (a run's validation split)."""
    info = checkpoint.data
    classes = list(info.classes)
    if len(data.classes) != len(classes):
        raise DataError(f"the data has {len(data.classes)} classes but the checkpoint was trained on {len(classes)}")
    rows = ImageSet(data.test_images, data.test_labels) if val_indices is None else _held_out(data, val_indices)
    model = model_from_checkpoint(checkpoint).to(device, memory_format=torch.channels_last)
    precision = checkpoint.recipe.precision if checkpoint.recipe is not None else "fp32"
    result = evaluate(model, rows, Normalizer(info.mean, info.std), device, precision, tta, tta_shift=tta_shift)
    matrix = confusion_matrix(rows.labels, result.predictions, len(classes))
    totals = matrix.sum(axis=1)
    per_class = {c: (float(matrix[i, i] / totals[i]) if totals[i] else None) for i, c in enumerate(classes)}
    return {
        "arch": checkpoint.arch,
        "epoch": checkpoint.epoch,  # completed epochs
        "steps_into_next_epoch": checkpoint.steps_into_next_epoch,  # >0 for a checkpoint saved on Ctrl-C
        "data": data.source.get("path"),
        "fingerprint": data.source.get("fingerprint"),
        "same_data_as_training": data.source.get("fingerprint") == info.fingerprint,
        "split": "test" if val_indices is None else "val",
        "tta": tta,
        "tta_shift": tta_shift,
        "images": len(rows),
        "loss": result.loss,
        "accuracy": result.accuracy,
        "single_view_accuracy": result.single_view_accuracy,
        "flip_accuracy": result.flip_accuracy,
        "per_class_accuracy": per_class,
        "classes": classes,
        "confusion": matrix.tolist(),
    }


def _held_out(data: Any, indices: list[int]) -> ImageSet:
    """The training images at `indices`, checked against the training set's size."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1 or len(idx) == 0 or idx.min() < 0 or idx.max() >= len(data.train_labels):
        raise DataError(f"the run's validation indices do not fit the {len(data.train_labels):,} training images "
                        "of this dataset")
    return held_out_set(data, idx)


@dataclass(frozen=True)
class RunEvaluation:
    """What `evaluate_run` measured and where it wrote it."""

    result: dict[str, Any]  # eval.json's content
    run: RunDir  # holds eval.json and confusion.png
    data_path: str | None  # the dataset as given, or as the run recorded it


def evaluate_run(target: str | Path, data: str | None = None, device: str | None = None, tta: bool = False,
                 download: bool = False, tta_shift: int = 0, split: str = "test") -> RunEvaluation:
    """Evaluate a run directory's (or a checkpoint file's) model on the test split of `data` (default: the
    run's recorded dataset), or with `split` "val" on the training images the run held out, on `device`
    (default: CUDA when available); writes eval.json and confusion.png (eval-val.json and confusion-val.png)
    into its run directory."""
    from budgetnet.data import load_cifar
    from budgetnet.outputs import check_file_out
    from budgetnet.train.figures import plot_confusion
    from budgetnet.train.session import pick_device

    if tta_shift and not tta:
        raise DataError("--tta-shift needs --tta")
    path = resolve_checkpoint(target)
    run = RunDir.of(path)
    eval_path, confusion_path = run.eval_paths(split)
    val_indices = run.read_val_indices() if split == "val" else None
    for out in (eval_path, confusion_path):
        check_file_out(out)
    checkpoint = load_checkpoint(path, needs=FOR_INFERENCE)
    data_path = data or checkpoint.data.source_path
    result = evaluate_checkpoint(checkpoint, load_cifar(data_path, download=download), pick_device(device), tta,
                                 tta_shift, val_indices)
    result["checkpoint"] = str(path)
    run.write_eval(result, split)
    partial = f" + {result['steps_into_next_epoch']} steps" if result["steps_into_next_epoch"] else ""
    title = (f"{result['arch']}, epoch {result['epoch']}{partial}, {split}: {100 * result['accuracy']:.2f}%, "
             f"TTA {tta_text(tta, tta_shift)}")
    plot_confusion(np.array(result["confusion"]), result["classes"], confusion_path, title)
    return RunEvaluation(result, run, data_path)
