"""The run directory: resolved config as JSON, metrics.jsonl, env.json and checkpoints/last.pt.

Every file a run writes goes through `RunDir`, so a multi-process run makes one (on rank 0) and
the other ranks simply have none. The first file written is a marker, so budgetnet recognises its
own run directories: a folder holding files without it is the user's, and nothing is written there.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from budgetnet.checkpoint import load_checkpoint, save_checkpoint
from budgetnet.errors import BudgetnetError
from budgetnet.fsutil import atomic_write_text, sweep_stale_temps
from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model
from budgetnet.outputs import check_dir_out
from budgetnet.spec import ResNetSpec
from budgetnet.train.recipe import Recipe

CHECKPOINT = Path("checkpoints") / "last.pt"
MARKER = ".budgetnet-run"  # written first into every run directory budgetnet creates
MARKER_TEXT = '{"kind": "budgetnet-run", "format": 1}\n'
FOR_RESUME = ("arch", "spec", "recipe", "model", "optimizer", "epoch", "rng", "data")  # what resume_run reads


def environment(device: torch.device, deterministic: bool = False) -> dict[str, Any]:
    """Versions and hardware that produced a run; no hostname or user name."""
    import numpy

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(terse=True),
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_kind": cpu_kind(cpu_flags()),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "deterministic": deterministic,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


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


@dataclass(frozen=True)
class RunDir:
    """The files of one training run under `path`."""

    path: Path

    @property
    def checkpoint(self) -> Path:
        """Where the latest checkpoint lives."""
        return self.path / CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        """The per-epoch metrics log."""
        return self.path / "metrics.jsonl"

    def has_checkpoint(self) -> bool:
        """Whether a run has saved at least one checkpoint here."""
        return self.checkpoint.is_file()

    def is_ours(self) -> bool:
        """Whether budgetnet created this directory (its marker is there)."""
        try:
            return (self.path / MARKER).read_text() == MARKER_TEXT
        except (OSError, UnicodeDecodeError):
            return False

    def check_new(self) -> bool:
        """Before any work: may a new run be written here? True when it restarts a run of ours that was
        stopped before its first checkpoint; refuses a run to resume and a folder holding others' files."""
        check_dir_out(self.path)
        if self.has_checkpoint():
            raise BudgetnetError(f"{self.path} already holds a run; continue it with --resume {self.path}")
        if not self.path.is_dir() or not any(self.path.iterdir()):
            return False
        if not self.is_ours():
            raise BudgetnetError(f"{self.path} holds files budgetnet did not write; pick another --out "
                                 f"(an empty or new folder)")
        return True

    def create(self, arch: str, spec: ResNetSpec, recipe: Recipe, data_info: dict, env: dict) -> None:
        """Write the resolved configuration of a new run (after `check_new` said it may)."""
        if self.has_checkpoint():
            raise BudgetnetError(f"{self.path} already holds a run; continue it with --resume {self.path}")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / MARKER, MARKER_TEXT)
        (self.path / "val_indices.json").unlink(missing_ok=True)  # a restarted run's earlier attempt may have one
        atomic_write_text(self.path / "spec.json", spec.to_json() + "\n")
        atomic_write_text(self.path / "recipe.json", recipe.to_json())
        atomic_write_text(self.path / "data.json", json.dumps(data_info, indent=2) + "\n")
        atomic_write_text(self.path / "env.json", json.dumps({"arch": arch, **env}, indent=2) + "\n")
        atomic_write_text(self.metrics_path, "")

    def write_json(self, name: str, value: Any) -> None:
        """Write one JSON file into the run directory."""
        atomic_write_text(self.path / name, json.dumps(value, indent=2) + "\n")

    def append_metrics(self, metrics: dict[str, Any]) -> None:
        """Add one epoch's line to metrics.jsonl."""
        try:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(metrics) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a failed write() names no file; the one line should
            raise OSError(e.errno, e.strerror, str(self.metrics_path)) from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every epoch's metrics line."""
        return read_metrics(self.path)

    def keep_metrics_through(self, epochs: int) -> None:
        """Drop lines past `epochs`: a crash between the metrics line and the checkpoint leaves one extra."""
        kept = [m for m in self.read_metrics() if m["epoch"] <= epochs]
        atomic_write_text(self.metrics_path, "".join(json.dumps(m) + "\n" for m in kept))

    def save(self, state: dict[str, Any]) -> None:
        """Write checkpoints/last.pt atomically."""
        save_checkpoint(self.checkpoint, state)

    def load(self) -> dict[str, Any]:
        """Read checkpoints/last.pt (weights_only=True), sweeping what killed writers left beside it."""
        sweep_stale_temps(self.checkpoint.parent)
        sweep_stale_temps(self.path)
        return load_checkpoint(self.checkpoint, needs=FOR_RESUME)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The parsed metrics.jsonl of a run directory, with a clear error if it is missing or damaged.

    Each line is appended with its newline in one write, so text after the last newline is a write
    that a crash cut short: it is left out here, and `keep_metrics_through` (on resume) drops it.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise BudgetnetError(f"{run_dir} holds no metrics.jsonl (is it a run directory?)")
    try:
        whole = path.read_text()
    except UnicodeDecodeError:
        raise BudgetnetError(f"{path} is damaged: not UTF-8 text") from None
    lines = []
    for number, line in enumerate(whole.split("\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise BudgetnetError(f"{path}:{number} is not valid JSON; the run's metrics are damaged") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("epoch"), int):
            raise BudgetnetError(f"{path}:{number} is not one epoch's metrics (no integer 'epoch')")
        lines.append(entry)
    return lines


def read_json(run_dir: str | Path, name: str) -> dict[str, Any]:
    """One JSON file of a run directory."""
    path = Path(run_dir) / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BudgetnetError(f"{run_dir} holds no {name} (is it a run directory?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BudgetnetError(f"{path} is not valid JSON ({e})") from None
