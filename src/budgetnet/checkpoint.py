"""Checkpoints that rebuild their own model: written atomically, loaded with weights_only=True."""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from budgetnet.errors import CheckpointError
from budgetnet.fsutil import atomic_write_bytes
from budgetnet.spec import ResNetSpec

CHECKPOINT_KIND = "budgetnet-checkpoint"
CHECKPOINT_VERSION = 1  # bump when the layout changes; older readers then refuse newer files
DATA_KEYS = ("classes", "mean", "std")  # what every use of a checkpoint's "data" entry reads
FOR_INFERENCE = ("spec", "model", "data")  # what eval, predict, export, quantize and card read


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (which must hold "spec" and "model") atomically, tagged with kind and version."""
    if "spec" not in state or "model" not in state:
        raise ValueError("a checkpoint needs at least 'spec' (a dict) and 'model' (a state dict)")
    payload = {"kind": CHECKPOINT_KIND, "version": CHECKPOINT_VERSION, **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    # written with ordinary file I/O: torch.save to a file on a full disk raises a RuntimeError with no errno
    atomic_write_bytes(path, buffer.getvalue())


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint a user means: the file itself, or a run directory's `checkpoints/last.pt`."""
    path = Path(path)
    if path.is_dir():
        last = path / "checkpoints" / "last.pt"
        if not last.is_file():
            raise CheckpointError(f"{path} is a directory but holds no checkpoints/last.pt (is it a run directory?)")
        return last
    return path


def _load_failure(e: Exception) -> str:
    """Why torch.load refused a file, without torch's advice to retry with weights_only=False: for a
    file from an unknown source that advice is how code gets run."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in str(e):
        named = [line for line in lines if "GLOBAL" in line or "global" in line]
        return "it holds Python objects, not only tensors and plain data; refused unread" + (
            f": {named[0]}" if named else "")
    reason = lines[0] if lines else type(e).__name__
    return type(e).__name__ if "weights_only" in reason else reason


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    needs: Sequence[str] = ("spec", "model")) -> dict[str, Any]:
    """Read a checkpoint (or a run directory's last one) safely: no code runs, foreign files are refused.

    `needs` names the entries the caller reads; a tagged checkpoint that lacks one gets a
    CheckpointError naming it (with "data", its classes, mean and std are checked too).
    """
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a regular file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    # random bytes make the weights_only unpickler raise almost any type (IndexError, KeyError, ...);
    # it never runs code, so every failure here means 'not a checkpoint'
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{path} is not a readable budgetnet checkpoint ({_load_failure(e)})") from None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is not a budgetnet checkpoint")
    version = state.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}, newer than this budgetnet reads "
            f"({CHECKPOINT_VERSION}); upgrade budgetnet to load it"
        )
    _require(state, path, needs)
    return state


def _require(state: dict[str, Any], path: Path, needs: Sequence[str]) -> None:
    missing = [key for key in needs if state.get(key) is None]
    if missing:
        raise CheckpointError(f"{path} is a damaged budgetnet checkpoint: it lacks {', '.join(map(repr, missing))}")
    if "data" not in needs:
        return
    data = state["data"]
    if not isinstance(data, dict) or any(key not in data for key in DATA_KEYS):
        raise CheckpointError(f"{path} is a damaged budgetnet checkpoint: its 'data' entry lacks "
                              f"{', '.join(DATA_KEYS)}")
    classes, mean, std = (data[key] for key in DATA_KEYS)
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
            and _floats(mean) and _floats(std) and len(mean) == len(std)):
        raise CheckpointError(f"{path} is a damaged budgetnet checkpoint: its 'data' entry needs a list of "
                              f"class names and per-channel mean and std")


def _floats(values: Any) -> bool:
    return isinstance(values, list) and bool(values) and all(isinstance(v, (int, float)) for v in values)


def model_from_checkpoint(state: dict[str, Any]) -> torch.nn.Module:
    """Rebuild the model a loaded checkpoint describes, in eval mode, with the weights it reports.

    A run trained with a weight average (EMA) reports, and so exports, the averaged weights.
    """
    from budgetnet.model import build_model

    spec = ResNetSpec.from_dict(state["spec"])
    model = build_model(spec)
    ema = state.get("ema")
    try:
        model.load_state_dict(ema["module"] if isinstance(ema, dict) else state["model"])
    except (RuntimeError, TypeError, AttributeError, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"checkpoint weights do not match its spec: {first}") from None
    return model.eval()
