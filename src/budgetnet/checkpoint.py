"""Checkpoints that rebuild their own model: written atomically, loaded with weights_only=True."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from budgetnet.errors import CheckpointError
from budgetnet.fsutil import atomic_path
from budgetnet.spec import ResNetSpec

CHECKPOINT_KIND = "budgetnet-checkpoint"
CHECKPOINT_VERSION = 1  # bump when the layout changes; older readers then refuse newer files


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (which must hold "spec" and "model") atomically, tagged with kind and version."""
    if "spec" not in state or "model" not in state:
        raise ValueError("a checkpoint needs at least 'spec' (a dict) and 'model' (a state dict)")
    payload = {"kind": CHECKPOINT_KIND, "version": CHECKPOINT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint a user means: the file itself, or a run directory's `checkpoints/last.pt`."""
    path = Path(path)
    if path.is_dir():
        last = path / "checkpoints" / "last.pt"
        if not last.is_file():
            raise CheckpointError(f"{path} is a directory but holds no checkpoints/last.pt (is it a run directory?)")
        return last
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (or a run directory's last one) safely: no code runs, foreign files are refused."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    # random bytes make the weights_only unpickler raise almost any type (IndexError, KeyError, ...);
    # it never runs code, so every failure here means 'not a checkpoint'
    except Exception as e:  # noqa: BLE001
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable budgetnet checkpoint ({first_line})") from None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path} is not a budgetnet checkpoint")
    version = state.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}, newer than this budgetnet reads "
            f"({CHECKPOINT_VERSION}); upgrade budgetnet to load it"
        )
    return state


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
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint weights do not match its spec: {str(e).splitlines()[0]}") from None
    return model.eval()
