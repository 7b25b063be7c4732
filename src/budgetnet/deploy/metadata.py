"""What a budgetnet ONNX file says about itself (its metadata_props), written and checked here.

Every value is a string; structured values are JSON. Since format 2 the model's input is uint8 RGB
(N, C, 32, 32) and the normalisation (pixels / 255 - mean) / std is inside the graph; mean and std
are recorded here for people. Format 1 took pre-normalised float32 input and is refused.
"""

from __future__ import annotations

import json
from typing import Any

from budgetnet.errors import CheckpointError
from budgetnet.runrecord import Checkpoint

ONNX_KIND = "budgetnet-onnx"
ONNX_FORMAT = 2  # bump when the metadata or input/output layout changes; older readers then refuse
# 1: float32 input normalised by the caller; 2: uint8 pixels in, normalisation inside the graph
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
PREFIX = "budgetnet."


def export_metadata(checkpoint: Checkpoint, precision: str, checkpoint_sha256: str) -> dict[str, str]:
    """The metadata_props for an export of a loaded checkpoint at `precision` ("fp32" or "int8")."""
    from budgetnet import __version__

    data = checkpoint.data
    if data is None:
        raise CheckpointError("the checkpoint's 'data' entry lacks classes, mean or std; cannot export it")
    fields = {
        "kind": ONNX_KIND,
        "format": str(ONNX_FORMAT),
        "version": __version__,
        "precision": precision,
        "arch": checkpoint.arch or "custom",
        "classes": json.dumps(list(data.classes)),
        "mean": json.dumps(list(data.mean)),
        "std": json.dumps(list(data.std)),
        "spec": json.dumps(checkpoint.spec.to_dict(), sort_keys=True),
        "recipe": json.dumps(checkpoint.recipe.to_dict() if checkpoint.recipe else {}, sort_keys=True),
        "data_source": json.dumps(data.source, sort_keys=True),
        "epoch": "" if checkpoint.epoch is None else str(checkpoint.epoch),
        "checkpoint_sha256": checkpoint_sha256,
        "input": f"{INPUT_NAME}: uint8 (N, {len(data.mean)}, 32, 32) RGB pixels; normalised inside the graph",
        "output": f"{OUTPUT_NAME}: float32 (N, {len(data.classes)}), unnormalised class scores",
    }
    return {PREFIX + k: v for k, v in fields.items()}


def read_export_metadata(props: dict[str, str], name: str) -> dict[str, Any]:
    """Check and decode metadata_props of the file `name`; refuses foreign and too-new files."""
    if props.get(PREFIX + "kind") != ONNX_KIND:
        raise CheckpointError(f"{name} is an ONNX model but not a budgetnet export (no budgetnet metadata)")
    try:
        fmt = int(props.get(PREFIX + "format", ""))
    except ValueError:
        fmt = None
    if fmt is not None and fmt < ONNX_FORMAT:
        made_by = props.get(PREFIX + "version", "an earlier version")
        raise CheckpointError(
            f"{name} has export format {fmt} (budgetnet {made_by}), which takes pre-normalised float input; "
            f"this budgetnet reads format {ONNX_FORMAT} only: export the run again with 'budgetnet export'"
        )
    if fmt is None or fmt > ONNX_FORMAT:
        raise CheckpointError(
            f"{name} has export format {props.get(PREFIX + 'format')!r}, newer than this budgetnet reads "
            f"({ONNX_FORMAT}); upgrade budgetnet to load it"
        )
    try:
        meta = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        for key in ("classes", "mean", "std", "spec", "recipe", "data_source"):
            meta[key] = json.loads(meta[key])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{name} has damaged budgetnet metadata ({type(e).__name__}: {e})") from None
    return meta
