"""Evaluating a checkpoint on a test set: accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from budgetnet.checkpoint import model_from_checkpoint
from budgetnet.errors import DataError
from budgetnet.train.batches import ImageSet, Normalizer
from budgetnet.train.loop import evaluate


def run_dir_of(checkpoint: Path) -> Path:
    """The run directory a checkpoint belongs to (its folder, or the one above `checkpoints/`)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    flat = np.asarray(labels, dtype=np.int64) * num_classes + np.asarray(predictions, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def evaluate_checkpoint(state: dict[str, Any], data: Any, device: torch.device, tta: bool = False) -> dict[str, Any]:
    """Test-set loss, accuracy, per-class accuracy and confusion matrix of a loaded checkpoint."""
    info = state["data"]
    classes = list(info["classes"])
    if len(data.classes) != len(classes):
        raise DataError(f"the data has {len(data.classes)} classes but the checkpoint was trained on {len(classes)}")
    model = model_from_checkpoint(state).to(device, memory_format=torch.channels_last)
    precision = state.get("recipe", {}).get("precision", "fp32")
    result = evaluate(model, ImageSet(data.test_images, data.test_labels),
                      Normalizer(tuple(info["mean"]), tuple(info["std"])), device, precision, tta)
    matrix = confusion_matrix(data.test_labels, result.predictions, len(classes))
    totals = matrix.sum(axis=1)
    per_class = {c: (float(matrix[i, i] / totals[i]) if totals[i] else None) for i, c in enumerate(classes)}
    return {
        "arch": state.get("arch"),
        "epoch": state.get("epoch"),  # completed epochs
        "steps_into_next_epoch": (state.get("partial") or {}).get("step", 0),  # >0 for a checkpoint saved on Ctrl-C
        "data": data.source.get("path"),
        "fingerprint": data.source.get("fingerprint"),
        "same_data_as_training": data.source.get("fingerprint") == (info.get("source") or {}).get("fingerprint"),
        "tta": tta,
        "images": int(len(data.test_labels)),
        "loss": result.loss,
        "accuracy": result.accuracy,
        "per_class_accuracy": per_class,
        "classes": classes,
        "confusion": matrix.tolist(),
    }
