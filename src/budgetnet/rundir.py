"""The run directory: every file that training and the verbs after it (eval, export, quantize, card, plot)
write into a run, named here and nowhere else, with its reader and writer.

    RUN/.budgetnet-run                marker, written first: a folder budgetnet created
    RUN/spec.json recipe.json data.json env.json    the resolved configuration and the machine
    RUN/metrics.jsonl                 one line per finished epoch
    RUN/val_indices.json              the held-out training images (with --val-split)
    RUN/checkpoints/last.pt           the latest checkpoint
    RUN/tensorboard/                  TensorBoard events (train --tensorboard)
    RUN/eval.json, RUN/confusion.png  budgetnet eval (eval-val.json, confusion-val.png: eval --split val)
    RUN/curves.png                    budgetnet plot
    RUN/export/model.onnx, model.int8.onnx, quantize.json    budgetnet export and quantize
    RUN/MODEL_CARD.md                 budgetnet card

A multi-process run makes one RunDir (on rank 0); the other ranks write nothing. docs/rundir.md says
what writes and reads each file. A folder holding files but no marker is the user's: nothing is
written there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgetnet.errors import BudgetnetError
from budgetnet.fsutil import atomic_write_text, sweep_stale_temps
from budgetnet.outputs import check_dir_out
from budgetnet.runrecord import Checkpoint, DataInfo
from budgetnet.spec import ResNetSpec
from budgetnet.train.recipe import Recipe

MARKER = ".budgetnet-run"
MARKER_TEXT = '{"kind": "budgetnet-run", "format": 1}\n'
CHECKPOINTS = "checkpoints"  # the checkpoint's folder
EXPORT = "export"  # the exports' folder
QUANTIZE_RECORD = "quantize.json"  # beside the int8 export it describes


def write_record(path: Path, value: Any) -> None:
    """Write a JSON file of a run (indented, newline-terminated) atomically."""
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")


def read_record(path: Path) -> Any:
    """A JSON file a later step may not have written yet: its content, or None; one line if it is damaged."""
    try:
        return _parse_record(path)
    except FileNotFoundError:
        return None


def _parse_record(path: Path) -> Any:
    """A JSON file of a run; FileNotFoundError if it is absent, one line if it is damaged."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BudgetnetError(f"{path} is unreadable ({e}); was the run directory damaged?") from None


@dataclass(frozen=True)
class RunDir:
    """The files of one training run under `path`."""

    path: Path

    @classmethod
    def holding(cls, file: str | Path) -> RunDir | None:
        """The run a model file sits in (RUN for RUN/checkpoints/*.pt and RUN/export/*), else None."""
        file = Path(file)
        return cls(file.parent.parent) if file.parent.name in (CHECKPOINTS, EXPORT) else None

    @classmethod
    def of(cls, path: str | Path) -> RunDir:
        """The run a user names: a directory itself, the run holding a model file, else the file's folder."""
        path = Path(path)
        return cls(path) if path.is_dir() else cls.holding(path) or cls(path.parent)

    @property
    def spec_path(self) -> Path:
        """The architecture as a spec file (`train --arch` takes it)."""
        return self.path / "spec.json"

    @property
    def recipe_path(self) -> Path:
        """The recipe, precision resolved."""
        return self.path / "recipe.json"

    @property
    def data_path(self) -> Path:
        """The data trained on (a DataInfo)."""
        return self.path / "data.json"

    @property
    def env_path(self) -> Path:
        """Versions and hardware of the run."""
        return self.path / "env.json"

    @property
    def metrics_path(self) -> Path:
        """One line per finished epoch."""
        return self.path / "metrics.jsonl"

    @property
    def val_indices_path(self) -> Path:
        """The held-out training images."""
        return self.path / "val_indices.json"

    @property
    def checkpoint(self) -> Path:
        """The latest checkpoint."""
        return self.path / CHECKPOINTS / "last.pt"

    @property
    def tensorboard_dir(self) -> Path:
        """TensorBoard's event files."""
        return self.path / "tensorboard"

    @property
    def eval_path(self) -> Path:
        """`budgetnet eval`'s result."""
        return self.path / "eval.json"

    @property
    def confusion_path(self) -> Path:
        """`budgetnet eval`'s confusion matrix."""
        return self.path / "confusion.png"

    def eval_paths(self, split: str = "test") -> tuple[Path, Path]:
        """`budgetnet eval`'s result and confusion matrix on `split`: eval.json and confusion.png for the test
        set, eval-val.json and confusion-val.png for the validation split."""
        if split == "test":
            return self.eval_path, self.confusion_path
        return self.path / f"eval-{split}.json", self.path / f"confusion-{split}.png"

    @property
    def curves_path(self) -> Path:
        """`budgetnet plot`'s curves of this run."""
        return self.path / "curves.png"

    @property
    def export_dir(self) -> Path:
        """Where `export` and `quantize` write."""
        return self.path / EXPORT

    @property
    def onnx_path(self) -> Path:
        """The fp32 ONNX export."""
        return self.export_dir / "model.onnx"

    @property
    def int8_path(self) -> Path:
        """The int8 ONNX export."""
        return self.export_dir / "model.int8.onnx"

    @property
    def quantize_path(self) -> Path:
        """`quantize`'s measured report."""
        return self.export_dir / QUANTIZE_RECORD

    @property
    def card_path(self) -> Path:
        """`budgetnet card`'s model card."""
        return self.path / "MODEL_CARD.md"

    def relative(self, path: Path) -> str:
        """`path` as the run's own name for it (checkpoints/last.pt, export/model.onnx, ...)."""
        return path.relative_to(self.path).as_posix()

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
        self.val_indices_path.unlink(missing_ok=True)  # a restarted run's earlier attempt may have one
        atomic_write_text(self.spec_path, spec.to_json() + "\n")
        atomic_write_text(self.recipe_path, recipe.to_json())
        write_record(self.data_path, data_info)
        write_record(self.env_path, {"arch": arch, **env})
        atomic_write_text(self.metrics_path, "")

    def write_val_indices(self, indices: list[int]) -> None:
        """Record which original training images were held out for validation."""
        write_record(self.val_indices_path, indices)

    def read_val_indices(self) -> list[int]:
        """The original training images this run held out, or a BudgetnetError if it held out none."""
        indices = read_record(self.val_indices_path)
        if not indices:
            raise BudgetnetError(f"{self.path} has no validation split (train with --val-split N to hold images out)")
        if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
            raise BudgetnetError(f"{self.val_indices_path} is not a list of image indices")
        return indices

    def read_recipe(self) -> Recipe:
        """recipe.json as a recipe."""
        return Recipe.from_dict(self._read_json(self.recipe_path))

    def read_data(self) -> DataInfo:
        """data.json as a DataInfo."""
        try:
            return DataInfo.from_dict(self._read_json(self.data_path))
        except ValueError as e:
            raise BudgetnetError(f"{self.data_path} is damaged: {str(e).replace('its ', '', 1)}") from None

    def read_env(self) -> dict[str, Any]:
        """env.json: versions and hardware."""
        return self._read_json(self.env_path)

    def _read_json(self, path: Path) -> Any:
        try:
            return _parse_record(path)
        except FileNotFoundError:
            raise BudgetnetError(f"{self.path} holds no {path.name} (is it a run directory?)") from None

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
        """Every finished epoch's metrics, with a clear error if the file is missing or damaged.

        Each line is appended with its newline in one write, so text after the last newline is a write
        that a crash cut short: it is left out here, and `keep_metrics_through` (on resume) drops it.
        """
        path = self.metrics_path
        if not path.is_file():
            raise BudgetnetError(f"{self.path} holds no {path.name} (is it a run directory?)")
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

    def keep_metrics_through(self, epochs: int) -> None:
        """Drop lines past `epochs`: a crash between the metrics line and the checkpoint leaves one extra."""
        kept = [m for m in self.read_metrics() if m["epoch"] <= epochs]
        atomic_write_text(self.metrics_path, "".join(json.dumps(m) + "\n" for m in kept))

    def has_checkpoint(self) -> bool:
        """Whether a run has saved at least one checkpoint here."""
        return self.checkpoint.is_file()

    def save(self, state: dict[str, Any]) -> None:
        """Write checkpoints/last.pt atomically."""
        from budgetnet.checkpoint import save_checkpoint

        save_checkpoint(self.checkpoint, state)

    def load(self) -> Checkpoint:
        """Read the checkpoint with everything resume needs, sweeping what killed writers left beside it."""
        from budgetnet.checkpoint import FOR_RESUME, load_checkpoint

        sweep_stale_temps(self.checkpoint.parent)
        sweep_stale_temps(self.path)
        return load_checkpoint(self.checkpoint, needs=FOR_RESUME)

    def write_eval(self, result: dict[str, Any], split: str = "test") -> None:
        """Write eval.json (eval-val.json for the validation split)."""
        write_record(self.eval_paths(split)[0], result)

    def read_eval(self) -> dict[str, Any] | None:
        """eval.json, or None before `budgetnet eval` ran."""
        return read_record(self.eval_path)

    def read_quantize(self) -> dict[str, Any] | None:
        """export/quantize.json, or None before `budgetnet quantize` ran."""
        return read_record(self.quantize_path)
