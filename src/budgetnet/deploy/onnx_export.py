"""ONNX export with a dynamic batch dimension, safe opening of exports, and the PyTorch-vs-ORT check.

The graph takes uint8 RGB pixels (N, C, 32, 32): its first ops cast them to float and normalise them
with the training statistics, so no caller repeats the preprocessing.

Exporter: torch.onnx.export(dynamo=True), the maintained path (the TorchScript exporter is
deprecated). Opset 20: the exporter's default in torch 2.13 and well inside what onnxruntime
>= 1.17 and its static quantizer support; it has every op a ResNet needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from budgetnet.deploy.metadata import INPUT_NAME, OUTPUT_NAME, export_metadata, read_export_metadata
from budgetnet.errors import CheckpointError
from budgetnet.fsutil import atomic_path
from budgetnet.runrecord import Checkpoint

OPSET = 20
# allowed |onnxruntime - pytorch| logit, as a fraction of the logit scale: float32 kernels differ with the CPU
# (AVX2 vs AVX-512, oneDNN vs MLAS, fused or not) by about 1e-4 of it; a real mismatch (a wrong weight,
# normalisation or layer) moves logits by percents of it
RELATIVE_TOLERANCE = 2e-3


@dataclass(frozen=True)
class LogitCheck:
    """How onnxruntime's logits compare with PyTorch's on the same images."""

    max_diff: float  # largest |pytorch - onnxruntime| logit
    scale: float  # largest |pytorch| logit, at least 1: what float32 rounding is relative to
    tolerance: float  # RELATIVE_TOLERANCE * scale
    images: int
    top1_same: int  # images whose top class is the same in both
    clear_flips: int  # images whose top two PyTorch logits are > 2 tolerances apart, yet whose top class changed

    @property
    def ok(self) -> bool:
        """Within the tolerance, and no image with a clear top class changed it."""
        return self.max_diff <= self.tolerance and self.clear_flips == 0

    def describe(self) -> str:
        """One line for the user."""
        return (f"max |onnxruntime - pytorch| logit = {self.max_diff:.2e} (tolerance {self.tolerance:.2e}, "
                f"{RELATIVE_TOLERANCE:g} of the logit scale {self.scale:.3g}); same top-1 class on "
                f"{self.top1_same}/{self.images} images")


def compare_logits(expected: np.ndarray, got: np.ndarray) -> LogitCheck:
    """Compare (N, classes) logits; a near-tie (top-2 margin within 2 tolerances) may swap its top class."""
    expected, got = np.asarray(expected, np.float64), np.asarray(got, np.float64)
    scale = max(1.0, float(np.abs(expected).max()))
    tolerance = RELATIVE_TOLERANCE * scale
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, -1] - top2[:, 0] > 2 * tolerance
    same = expected.argmax(1) == got.argmax(1)
    return LogitCheck(float(np.abs(expected - got).max()), scale, tolerance, len(expected), int(same.sum()),
                      int((clear & ~same).sum()))


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # the exporter logs warnings about torchvision ops we never use; users should not see them
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(checkpoint: Checkpoint, out: str | Path, checkpoint_sha256: str) -> Path:
    """Export a loaded checkpoint's model to `out` (fp32, dynamic batch, budgetnet metadata)."""
    import onnx
    import torch

    from budgetnet.checkpoint import inference_model_from_checkpoint

    metadata = export_metadata(checkpoint, "fp32", checkpoint_sha256)
    model = inference_model_from_checkpoint(checkpoint)
    example = torch.zeros(2, len(checkpoint.data.mean), 32, 32, dtype=torch.uint8)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    out = Path(out)
    with atomic_path(out) as tmp:
        program.save(str(tmp))
        proto = onnx.load(str(tmp))
        set_metadata(proto, metadata)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return out


def set_metadata(proto: Any, metadata: dict[str, str]) -> None:
    """Replace the budgetnet entries of an ONNX ModelProto's metadata_props with `metadata`."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for key, value in keep + sorted(metadata.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "budgetnet"


def open_onnx(path: str | Path, threads: int = 0) -> tuple[Any, dict[str, Any]]:
    """An onnxruntime CPU session for a budgetnet export, and its decoded metadata; foreign files refused."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0: onnxruntime's default, one per core
    options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise here
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own pybind exception types, not a stable hierarchy
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable ONNX model ({first[:200]})") from None
    meta = read_export_metadata(session.get_modelmeta().custom_metadata_map, str(path))
    check_io_shapes(session, meta, str(path))
    return session, meta


def _dims(shape: list) -> str:
    return "(" + ", ".join("N" if not isinstance(d, int) else str(d) for d in shape) + ")"


def check_io_shapes(session: Any, meta: dict[str, Any], name: str) -> None:
    """Refuse an export whose one input is not uint8 (N, C, 32, 32) for the metadata's C channels, or
    whose first output is not (N, one score per class name): running it would fail or mislabel classes."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    channels, classes = len(meta["mean"]), len(meta["classes"])
    if len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or list(inputs[0].shape[1:]) != [channels, 32, 32]:
        got = ", ".join(f"{i.type} {_dims(i.shape)}" for i in inputs) or "none"
        raise CheckpointError(f"{name} does not match its budgetnet metadata: expected one uint8 input "
                              f"(N, {channels}, 32, 32), got {got}")
    shape = outputs[0].shape if outputs else []
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != classes):
        got = _dims(shape) if outputs else "none"
        raise CheckpointError(f"{name} does not match its budgetnet metadata: {classes} class names but the "
                              f"output is {got}")


def onnx_logits(session: Any, images: np.ndarray) -> np.ndarray:
    """Run a session on uint8 RGB (N, C, 32, 32) images; returns (N, classes) logits."""
    if images.dtype != np.uint8:
        raise TypeError(f"a budgetnet ONNX model takes uint8 pixels, got {images.dtype}")
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(images)})[0]


def check_logits(checkpoint: Checkpoint, session: Any, images: np.ndarray) -> LogitCheck:
    """PyTorch against onnxruntime on the same uint8 (N, C, 32, 32) `images`, each with its own preprocessing."""
    import torch

    from budgetnet.checkpoint import inference_model_from_checkpoint

    images = np.ascontiguousarray(images)
    with torch.no_grad():
        expected = inference_model_from_checkpoint(checkpoint)(torch.from_numpy(images)).numpy()
    return compare_logits(expected, onnx_logits(session, images))


@dataclass(frozen=True)
class CheckedExport:
    """An export written by `export_checked` and how it compared with PyTorch."""

    path: Path
    check: LogitCheck
    images: str  # which images the check ran on


def export_checked(target: str | Path, out: str | Path | None = None, data: str | None = None) -> CheckedExport:
    """Export a run's (or a checkpoint file's) model to `out` (default: the run's export/model.onnx), then
    compare onnxruntime with PyTorch on real test images of `data` (default: the run's recorded dataset)."""
    from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint, resolve_checkpoint
    from budgetnet.deploy.rundata import reference_images
    from budgetnet.outputs import check_file_out
    from budgetnet.rundir import RunDir

    out = check_file_out(out if out is not None else RunDir.of(target).onnx_path)
    path = resolve_checkpoint(target)
    checkpoint = load_checkpoint(path, needs=FOR_INFERENCE)
    export_onnx(checkpoint, out, file_sha256(path))
    reference = reference_images(checkpoint, data)
    return CheckedExport(out, check_logits(checkpoint, open_onnx(out)[0], reference.images), reference.description)


def fresh_export(checkpoint: Checkpoint, out: Path, checkpoint_sha256: str, images: np.ndarray) -> LogitCheck | None:
    """Export to `out` unless it already holds an export of this exact checkpoint; the check on uint8
    `images` of a new export, None when the one there was kept."""
    try:
        if open_onnx(out)[1].get("checkpoint_sha256") == checkpoint_sha256:
            return None
    except CheckpointError:
        pass  # missing or unreadable: export it below
    export_onnx(checkpoint, out, checkpoint_sha256)
    return check_logits(checkpoint, open_onnx(out)[0], images)
