"""Checkpoints that rebuild their own model: written atomically as plain data, loaded with weights_only=True
into a typed `Checkpoint` record."""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from budgetnet.errors import CheckpointError
from budgetnet.fsutil import atomic_write_bytes
from budgetnet.rundir import RunDir
from budgetnet.runrecord import Checkpoint

CHECKPOINT_KIND = "budgetnet-checkpoint"
CHECKPOINT_VERSION = 1  # bump when the layout changes; older readers then refuse newer files
FOR_INFERENCE = ("spec", "model", "data")  # what eval, predict, export, quantize and card read
FOR_RESUME = ("arch", "spec", "recipe", "model", "optimizer", "epoch", "rng", "data")  # what resume reads


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (which must hold "spec" and "model") atomically, tagged with kind and version."""
    if "spec" not in state or "model" not in state:
        raise ValueError("a checkpoint needs at least 'spec' (a dict) and 'model' (a state dict)")
    payload = {"kind": CHECKPOINT_KIND, "version": CHECKPOINT_VERSION, **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    # written with ordinary file I/O: torch.save to a file on a full disk raises a RuntimeError with no errno
    atomic_write_bytes(path, buffer.getvalue())


def rng_state() -> dict[str, Any]:
    """The global torch RNG states as tensors only, so checkpoints stay weights_only-loadable."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint a user means: the file itself, or a run directory's latest checkpoint."""
    path = Path(path)
    if not path.is_dir():
        return path
    run = RunDir(path)
    if not run.has_checkpoint():
        raise CheckpointError(f"{path} is a directory but holds no {run.relative(run.checkpoint)} "
                              f"(is it a run directory?)")
    return run.checkpoint


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
                    needs: Sequence[str] = ("spec", "model")) -> Checkpoint:
    """Read a checkpoint (or a run directory's latest) safely: no code runs, foreign files are refused.

    Every entry is checked and typed here, once; `needs` names the entries the caller reads, and a
    tagged checkpoint that lacks one, or holds a damaged one, gets a CheckpointError naming it.
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
    try:
        return Checkpoint.from_state(state, needs)
    except ValueError as e:
        raise CheckpointError(f"{path} is a damaged budgetnet checkpoint: {e}") from None


def model_from_checkpoint(checkpoint: Checkpoint) -> torch.nn.Module:
    """Rebuild the model a loaded checkpoint describes, in eval mode, with the weights it reports.

    A run trained with a weight average (EMA) reports, and so exports, the averaged weights.
    """
    from budgetnet.model import build_model

    model = build_model(checkpoint.spec)
    try:
        model.load_state_dict(checkpoint.weights)
    except (RuntimeError, TypeError, AttributeError, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"checkpoint weights do not match its spec: {first}") from None
    return model.eval()


def inference_model_from_checkpoint(checkpoint: Checkpoint) -> torch.nn.Module:
    """The checkpoint's model with its normalisation inside: uint8 RGB (N, C, 32, 32) in, logits out, eval mode."""
    from budgetnet.model import InferenceModel

    if checkpoint.data is None:
        raise CheckpointError("the checkpoint records no data (classes, mean, std); it cannot classify images")
    return InferenceModel(model_from_checkpoint(checkpoint), checkpoint.data.mean, checkpoint.data.std).eval()
