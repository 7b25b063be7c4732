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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from budgetnet.deploy.metadata import PREFIX
from budgetnet.fsutil import atomic_path

CALIB_SEED = 0  # which training images calibrate; fixed so a quantization can be repeated exactly
CALIB_BATCH = 32  # images per calibration forward pass


class ImageReader(CalibrationDataReader):
    """Feeds uint8 images to the calibrator as normalised float32 batches."""

    def __init__(self, images: np.ndarray, mean: Sequence[float], std: Sequence[float], input_name: str) -> None:
        self.images, self.input_name, self.position = images, input_name, 0
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.images):
            return None
        batch = self.images[self.position : self.position + CALIB_BATCH]
        self.position += CALIB_BATCH
        return {self.input_name: (batch.astype(np.float32) / 255.0 - self.mean) / self.std}

    def rewind(self) -> None:
        self.position = 0


def calibration_sample(train_images: np.ndarray, count: int, seed: int = CALIB_SEED) -> np.ndarray:
    """`count` training images drawn without replacement by a seeded generator, in index order."""
    count = min(count, len(train_images))
    index = np.sort(np.random.default_rng(seed).choice(len(train_images), size=count, replace=False))
    return np.ascontiguousarray(train_images[index])


def quantize_onnx(
    fp32_path: Path, out: Path, calib_images: np.ndarray, mean: Sequence[float], std: Sequence[float]
) -> Path:
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
            ImageReader(calib_images, mean, std, INPUT_NAME),
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
        session, meta = open_onnx(path, threads)
        mean = np.asarray(meta["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(meta["std"], dtype=np.float32).reshape(1, -1, 1, 1)
        inputs = (test_images[:256].astype(np.float32) / 255.0 - mean) / std
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
