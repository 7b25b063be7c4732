"""Evaluating a checkpoint on a test set: accuracy, per-class accuracy and the confusion matrix."""

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


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    flat = np.asarray(labels, dtype=np.int64) * num_classes + np.asarray(predictions, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def evaluate_checkpoint(checkpoint: Checkpoint, data: Any, device: torch.device, tta: bool = False) -> dict[str, Any]:
    """Test-set loss, accuracy, per-class accuracy and confusion matrix of a loaded checkpoint."""
    info = checkpoint.data
    classes = list(info.classes)
    if len(data.classes) != len(classes):
        raise DataError(f"the data has {len(data.classes)} classes but the checkpoint was trained on {len(classes)}")
    model = model_from_checkpoint(checkpoint).to(device, memory_format=torch.channels_last)
    precision = checkpoint.recipe.precision if checkpoint.recipe is not None else "fp32"
    result = evaluate(model, ImageSet(data.test_images, data.test_labels), Normalizer(info.mean, info.std), device,
                      precision, tta)
    matrix = confusion_matrix(data.test_labels, result.predictions, len(classes))
    totals = matrix.sum(axis=1)
    per_class = {c: (float(matrix[i, i] / totals[i]) if totals[i] else None) for i, c in enumerate(classes)}
    return {
        "arch": checkpoint.arch,
        "epoch": checkpoint.epoch,  # completed epochs
        "steps_into_next_epoch": checkpoint.steps_into_next_epoch,  # >0 for a checkpoint saved on Ctrl-C
        "data": data.source.get("path"),
        "fingerprint": data.source.get("fingerprint"),
        "same_data_as_training": data.source.get("fingerprint") == info.fingerprint,
        "tta": tta,
        "images": int(len(data.test_labels)),
        "loss": result.loss,
        "accuracy": result.accuracy,
        "per_class_accuracy": per_class,
        "classes": classes,
        "confusion": matrix.tolist(),
    }


@dataclass(frozen=True)
class RunEvaluation:
    """What `evaluate_run` measured and where it wrote it."""

    result: dict[str, Any]  # eval.json's content
    run: RunDir  # holds eval.json and confusion.png
    data_path: str | None  # the dataset as given, or as the run recorded it


def evaluate_run(target: str | Path, data: str | None = None, device: str | None = None, tta: bool = False,
                 download: bool = False) -> RunEvaluation:
    """Evaluate a run directory's (or a checkpoint file's) model on the test split of `data` (default: the
    run's recorded dataset) on `device` (default: CUDA when available); writes eval.json and confusion.png
    into its run directory."""
    from budgetnet.data import load_cifar
    from budgetnet.outputs import check_file_out
    from budgetnet.train.figures import plot_confusion
    from budgetnet.train.session import pick_device

    path = resolve_checkpoint(target)
    run = RunDir.of(path)
    for out in (run.eval_path, run.confusion_path):
        check_file_out(out)
    checkpoint = load_checkpoint(path, needs=FOR_INFERENCE)
    data_path = data or checkpoint.data.source_path
    result = evaluate_checkpoint(checkpoint, load_cifar(data_path, download=download), pick_device(device), tta)
    result["checkpoint"] = str(path)
    run.write_eval(result)
    partial = f" + {result['steps_into_next_epoch']} steps" if result["steps_into_next_epoch"] else ""
    title = f"{result['arch']}, epoch {result['epoch']}{partial}: {100 * result['accuracy']:.2f}%{' (flip TTA)' if tta else ''}"
    plot_confusion(np.array(result["confusion"]), result["classes"], run.confusion_path, title)
    return RunEvaluation(result, run, data_path)
