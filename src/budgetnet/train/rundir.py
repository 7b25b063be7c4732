"""The run directory: resolved config as JSON, metrics.jsonl, env.json and checkpoints/last.pt.

Every file a run writes goes through `RunDir`, so a multi-process run makes one (on rank 0) and
the other ranks simply have none.
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
from budgetnet.fsutil import atomic_write_text
from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model
from budgetnet.spec import ResNetSpec
from budgetnet.train.recipe import Recipe

CHECKPOINT = Path("checkpoints") / "last.pt"


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

    def create(self, arch: str, spec: ResNetSpec, recipe: Recipe, data_info: dict, env: dict) -> None:
        """Write the resolved configuration of a new run; refuses a directory that already holds one."""
        if self.has_checkpoint() or self.metrics_path.exists():
            raise BudgetnetError(f"{self.path} already holds a run; continue it with --resume {self.path}")
        self.path.mkdir(parents=True, exist_ok=True)
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
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(metrics) + "\n")
            f.flush()
            os.fsync(f.fileno())

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
        """Read checkpoints/last.pt (weights_only=True)."""
        return load_checkpoint(self.checkpoint)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The parsed metrics.jsonl of a run directory, with a clear error if it is missing or damaged."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise BudgetnetError(f"{run_dir} holds no metrics.jsonl (is it a run directory?)")
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                raise BudgetnetError(f"{path}:{number} is not valid JSON") from None
    return lines


def read_json(run_dir: str | Path, name: str) -> dict[str, Any]:
    """One JSON file of a run directory."""
    path = Path(run_dir) / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BudgetnetError(f"{run_dir} holds no {name} (is it a run directory?)") from None
    except json.JSONDecodeError as e:
        raise BudgetnetError(f"{path} is not valid JSON ({e})") from None
