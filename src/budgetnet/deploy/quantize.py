"""Post-training static int8 quantization with ONNX Runtime's quantizer, calibrated on training images.

Choices: QDQ format (portable; onnxruntime fuses it into integer kernels), int8 weights
quantized per output channel, uint8 activations (the fast U8S8 path on x86 VNNI/AMX CPUs),
MinMax calibration over a seeded random sample of TRAINING images, never test images. MinMax
keeps only per-batch minima and maxima, so memory does not grow with the calibration count
(onnxruntime 1.32's CalibMaxIntermediateOutputs would discard batches unmerged: not used).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from budgetnet.deploy.metadata import PREFIX
from budgetnet.deploy.onnx_export import LogitCheck
from budgetnet.fsutil import atomic_path
from budgetnet.runrecord import Checkpoint

CALIB_SEED = 0  # which training images calibrate; fixed so a quantization can be repeated exactly
CALIB_BATCH = 32  # images per calibration forward pass
CHECK_IMAGES = 256  # test images a re-export is checked against PyTorch on
TARGETS = {"size_ratio_min": 3.5, "accuracy_drop_max_points": 0.5}  # what an int8 export should reach


class ImageReader(CalibrationDataReader):
    """Feeds uint8 images to the calibrator in batches, as the model takes them."""

    def __init__(self, images: np.ndarray, input_name: str) -> None:
        self.images, self.input_name, self.position = images, input_name, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.images):
            return None
        batch = self.images[self.position : self.position + CALIB_BATCH]
        self.position += CALIB_BATCH
        return {self.input_name: np.ascontiguousarray(batch)}

    def rewind(self) -> None:
        self.position = 0


def calibration_sample(train_images: np.ndarray, count: int, seed: int = CALIB_SEED) -> np.ndarray:
    """`count` training images drawn without replacement by a seeded generator, in index order."""
    count = min(count, len(train_images))
    index = np.sort(np.random.default_rng(seed).choice(len(train_images), size=count, replace=False))
    return np.ascontiguousarray(train_images[index])


def quantize_onnx(fp32_path: Path, out: Path, calib_images: np.ndarray) -> Path:
    """Write the int8 QDQ model of `fp32_path` to `out`, keeping its budgetnet metadata (precision int8)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from budgetnet.deploy.metadata import INPUT_NAME
    from budgetnet.deploy.onnx_export import set_metadata

    source = onnx.load(str(fp32_path))
    metadata = {p.key: p.value for p in source.metadata_props if p.key.startswith(PREFIX)}
    metadata[PREFIX + "precision"] = "int8"
    metadata[PREFIX + "calibration"] = json.dumps(
        {"images": len(calib_images), "split": "train", "seed": CALIB_SEED, "method": "MinMax"}
    )
    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(prepared))  # graph optimisation + shapes the quantizer needs
        quantize_static(
            str(prepared),
            str(quantized),
            ImageReader(calib_images, INPUT_NAME),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        proto = onnx.load(str(quantized))
    set_metadata(proto, metadata)
    with atomic_path(out) as tmp_out:
        onnx.save(proto, str(tmp_out))
    return out


def predictions(logits: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Top-1 class of every uint8 image, computed in batches."""
    out = [logits(images[i : i + batch_size]).argmax(axis=1) for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def compare_models(
    fp32_path: Path, int8_path: Path, test_images: np.ndarray, test_labels: np.ndarray, min_seconds: float = 2.0,
    threads: int = 1,
) -> dict[str, Any]:
    """File size, test accuracy and CPU images/s (batch 1 and 256, `threads` threads) of both files, measured now."""
    from budgetnet.deploy.onnx_export import onnx_logits, open_onnx
    from budgetnet.deploy.predict import load_classifier
    from budgetnet.deploy.speed import images_per_second

    result: dict[str, Any] = {}
    preds = {}
    for precision, path in (("fp32", fp32_path), ("int8", int8_path)):
        preds[precision] = predictions(load_classifier(path).logits, test_images)
        session, _ = open_onnx(path, threads)
        inputs = np.ascontiguousarray(test_images[:256])
        speed = {str(b): images_per_second(lambda x: onnx_logits(session, x), inputs, b, min_seconds) for b in (1, 256)}
        result[precision] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "test_acc": float((preds[precision] == test_labels).mean()),  # fraction, as in metrics.jsonl
            "images_per_s": speed,
        }
    fp32, int8 = result["fp32"], result["int8"]
    result["size_ratio"] = fp32["bytes"] / int8["bytes"]
    result["accuracy_drop_points"] = 100.0 * (fp32["test_acc"] - int8["test_acc"])
    result["speedup"] = {b: int8["images_per_s"][b] / fp32["images_per_s"][b] for b in ("1", "256")}
    result["top1_agreement"] = float((preds["fp32"] == preds["int8"]).mean())
    result["test_images"] = len(test_images)
    return result


@dataclass(frozen=True)
class Quantized:
    """What `quantize_run` wrote and measured."""

    report: dict[str, Any]  # quantize.json's content
    report_path: Path
    fp32_path: Path
    export_check: LogitCheck | None  # how a re-export of the fp32 model compared; None when the one there was kept
    source: str  # the dataset, described for people


def quantize_run(target: str | Path, data: str | None = None, calib: int = 1000, out: str | Path | None = None,
                 seconds: float = 2.0, threads: int = 1) -> Quantized:
    """Quantize a run's fp32 export (re-exported first unless it comes from this checkpoint) to int8 at `out`
    (default: the run's export/model.int8.onnx), calibrated on `calib` training images of `data` (default:
    the run's recorded dataset); measures both files now and writes quantize.json beside the int8 model."""
    from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint, resolve_checkpoint
    from budgetnet.deploy.onnx_export import file_sha256, fresh_export
    from budgetnet.deploy.rundata import describe_source, require_dataset, run_data_path
    from budgetnet.outputs import check_file_out
    from budgetnet.rundir import QUANTIZE_RECORD, RunDir, write_record

    run = RunDir.of(target)
    int8_path = Path(out) if out is not None else run.int8_path
    report_path = int8_path.parent / QUANTIZE_RECORD
    for path in (int8_path, report_path, run.onnx_path):
        check_file_out(path)
    checkpoint_file = resolve_checkpoint(target)
    checkpoint = load_checkpoint(checkpoint_file, needs=FOR_INFERENCE)
    sha256 = file_sha256(checkpoint_file)
    dataset = require_dataset(run_data_path(checkpoint.data.source, data))
    check = fresh_export(checkpoint, run.onnx_path, sha256, dataset.test_images[:CHECK_IMAGES])
    sample = calibration_sample(dataset.train_images, calib)
    quantize_onnx(run.onnx_path, int8_path, sample)
    report = compare_models(run.onnx_path, int8_path, dataset.test_images, dataset.test_labels, seconds, threads)
    report.update(_context(checkpoint, dataset.source, sha256, len(sample), threads))
    report["targets_met"] = {
        "size": report["size_ratio"] >= TARGETS["size_ratio_min"],
        "accuracy": report["accuracy_drop_points"] <= TARGETS["accuracy_drop_max_points"],
        "speed": all(v > 1.0 for v in report["speedup"].values()),
    }
    write_record(report_path, report)
    return Quantized(report, report_path, run.onnx_path, check, describe_source(dataset.source))


def _context(checkpoint: Checkpoint, source: dict[str, Any], sha256: str, calib: int, threads: int) -> dict[str, Any]:
    """quantize.json's record of what was measured, how and where."""
    import onnxruntime
    import torch

    from budgetnet import __version__
    from budgetnet.hardware import cpu_model

    return {
        "format": 1,
        "checkpoint_sha256": sha256,
        "epoch": checkpoint.epoch,
        "calibration": {"images": calib, "split": "train", "seed": CALIB_SEED, "method": "MinMax"},
        "data_source": source,
        "same_data_as_training": checkpoint.data.fingerprint == source.get("fingerprint"),
        "targets": TARGETS,
        "env": {"cpu": cpu_model(), "threads": threads or "all cores", "onnxruntime": onnxruntime.__version__,
                "torch": torch.__version__, "budgetnet": __version__},
    }
