"""Classify image files with a run directory, a checkpoint or an ONNX export, in batches.

Images of any size or mode go through budgetnet.data.images' documented policy (to RGB,
shorter side resized to 32, centre crop); every model takes those uint8 pixels and normalises them itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from budgetnet.data.images import IMAGE_SUFFIXES, read_image
from budgetnet.errors import DataError


@dataclass(frozen=True)
class Classifier:
    """A loaded model: uint8 (N, 3, 32, 32) images in, logits out, with its class names."""

    classes: tuple[str, ...]  # class names in label order
    backend: str  # "pytorch" or "onnxruntime"
    logits: Callable[[np.ndarray], np.ndarray]  # uint8 (N, 3, 32, 32) -> float32 (N, classes)
    # what the model file records: arch, spec, recipe, epoch, precision, data_source, file (ONNX: + calibration)
    about: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one file, most probable first."""

    path: str
    top: tuple[tuple[str, float], ...]  # (class name, probability)


def load_classifier(path: str | Path) -> Classifier:
    """Load a run directory or `.pt` checkpoint (PyTorch) or a `.onnx` export (onnxruntime)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return _onnx_classifier(path)
    return _torch_classifier(path)


def _torch_classifier(path: Path) -> Classifier:
    import torch

    from budgetnet.checkpoint import FOR_INFERENCE, inference_model_from_checkpoint, load_checkpoint, resolve_checkpoint

    checkpoint = load_checkpoint(path, needs=FOR_INFERENCE)
    model = inference_model_from_checkpoint(checkpoint)
    data = checkpoint.data

    def logits(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(images))).numpy()

    about = {"arch": checkpoint.arch, "spec": checkpoint.spec.to_dict(),
             "recipe": checkpoint.recipe.to_dict() if checkpoint.recipe else None, "epoch": checkpoint.epoch,
             "precision": "fp32", "data_source": data.source, "file": str(resolve_checkpoint(path))}
    return Classifier(data.classes, "pytorch", logits, about)


def _onnx_classifier(path: Path) -> Classifier:
    from budgetnet.deploy.onnx_export import onnx_logits, open_onnx

    session, meta = open_onnx(path)
    return Classifier(tuple(meta["classes"]), "onnxruntime", lambda images: onnx_logits(session, images),
                      {**meta, "file": str(path)})


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given, and every PNG/JPEG below each given directory (sorted); missing paths kept."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            files.append(item)  # a missing or unreadable file is reported when it is read
    return files


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def classify_files(
    model: Classifier, files: Sequence[Path], top_k: int = 5, batch_size: int = 256
) -> Iterator[Prediction | DataError]:
    """Classify `files` in batches, yielding a Prediction or the DataError of each file, in order."""
    k = max(1, min(top_k, len(model.classes)))
    for start in range(0, len(files), batch_size):
        results: list[Prediction | DataError | None] = []
        images, slots = [], []
        for path in files[start : start + batch_size]:
            try:
                images.append(read_image(path))
                slots.append(len(results))
                results.append(None)
            except DataError as e:
                results.append(e)
        if images:
            for slot, top in zip(slots, top_classes(model, np.stack(images), k)):
                results[slot] = Prediction(str(files[start + slot]), top)
        yield from results  # type: ignore[misc]


def top_classes(model: Classifier, images: np.ndarray, top_k: int) -> list[tuple[tuple[str, float], ...]]:
    """The `top_k` (class name, probability) pairs of each uint8 (N, 3, 32, 32) image, most probable first."""
    probs = softmax(model.logits(images).astype(np.float64))
    orders = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
    return [tuple((model.classes[i], float(row[i])) for i in order) for row, order in zip(probs, orders)]
