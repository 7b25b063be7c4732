"""ONNX export with a dynamic batch dimension, safe opening of exports, and the PyTorch-vs-ORT check.

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
from pathlib import Path
from typing import Any

import numpy as np

from budgetnet.deploy.metadata import INPUT_NAME, OUTPUT_NAME, export_metadata, read_export_metadata
from budgetnet.errors import CheckpointError
from budgetnet.fsutil import atomic_path

OPSET = 20


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


def export_onnx(state: dict[str, Any], out: str | Path, checkpoint_sha256: str) -> Path:
    """Export the checkpoint `state`'s model to `out` (fp32, dynamic batch, budgetnet metadata)."""
    import onnx
    import torch

    from budgetnet.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(state)
    metadata = export_metadata(state, "fp32", checkpoint_sha256)
    example = torch.zeros(2, 3, 32, 32)
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
    return session, meta


def onnx_logits(session: Any, inputs: np.ndarray) -> np.ndarray:
    """Run a session on normalised float32 (N, 3, 32, 32) inputs; returns (N, classes) logits."""
    return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(inputs, dtype=np.float32)})[0]


def max_logit_diff(state: dict[str, Any], session: Any, images: np.ndarray) -> float:
    """Largest |PyTorch - onnxruntime| logit on uint8 (N, 3, 32, 32) `images`, normalised as in training."""
    import torch

    from budgetnet.checkpoint import model_from_checkpoint
    from budgetnet.data.normalize import normalize

    model = model_from_checkpoint(state)
    inputs = normalize(torch.from_numpy(np.ascontiguousarray(images)), state["data"]["mean"], state["data"]["std"])
    with torch.no_grad():
        expected = model(inputs).numpy()
    got = onnx_logits(session, inputs.numpy())
    return float(np.abs(expected - got).max())
