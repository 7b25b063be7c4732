"""What a checkpoint says about its run, as typed records checked once, when the checkpoint is loaded.

On disk a checkpoint stays plain data (dicts, lists, numbers, strings and tensors), so that
torch.load(weights_only=True) reads it and every budgetnet version finds the same keys. `Checkpoint`
is that file's content with each entry turned into its type: a ResNetSpec, a Recipe, a DataInfo.
An entry that cannot be turned into its type raises a ValueError naming it; `load_checkpoint` turns
that into a one-line CheckpointError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from budgetnet.errors import BudgetnetError
from budgetnet.spec import ResNetSpec
from budgetnet.train.recipe import Recipe


@dataclass(frozen=True)
class DataInfo:
    """The data a run trained on, as data.json and the checkpoint's "data" entry record it."""

    classes: tuple[str, ...]  # class names in label order
    mean: tuple[float, ...]  # per-channel mean of pixels / 255 over the training images
    std: tuple[float, ...]  # per-channel standard deviation, same units
    source: dict[str, Any]  # what load_cifar reported: format, path, fingerprint, checksums, lossy
    augment: str | None = None  # the recipe's augmentation mode
    subset: int | None = None  # trained on the first N original training images; None = all
    val_split: int = 0  # original training images held out for validation
    train_rows: int | None = None  # training rows per epoch, augmented copies included

    @property
    def source_path(self) -> str | None:
        """Where the dataset was read from, as recorded."""
        return self.source.get("path")

    @property
    def fingerprint(self) -> str | None:
        """The recorded dataset's content fingerprint."""
        return self.source.get("fingerprint")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, with data.json's keys in data.json's order."""
        d = dataclasses.asdict(self)
        d.update(classes=list(self.classes), mean=list(self.mean), std=list(self.std))
        return d

    @classmethod
    def from_dict(cls, data: Any) -> DataInfo:
        """Check and convert a recorded "data" entry; a ValueError says what is wrong with it."""
        if not isinstance(data, dict) or any(key not in data for key in ("classes", "mean", "std")):
            raise ValueError("its 'data' entry lacks classes, mean, std")
        classes, mean, std = data["classes"], data["mean"], data["std"]
        if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
                and _numbers(mean) and _numbers(std) and len(mean) == len(std)):
            raise ValueError("its 'data' entry needs a list of class names and per-channel mean and std")
        source = data.get("source") or {}
        if not isinstance(source, dict):
            raise ValueError("its 'data' entry's source is not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "classes": tuple(classes),
                      "mean": tuple(float(m) for m in mean), "std": tuple(float(s) for s in std), "source": source})


def _numbers(values: Any) -> bool:
    return (isinstance(values, list) and bool(values)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values))


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: what its run is (arch, spec, recipe, data) and the tensors to rebuild or resume it.

    Entries a checkpoint may lack are None; `load_checkpoint(..., needs=...)` guarantees those a caller reads.
    """

    spec: ResNetSpec
    model: dict[str, Any]  # the trained weights: the model's state dict
    arch: str | None = None  # the preset name or spec file the run was started with
    recipe: Recipe | None = None  # as resolved when the run started (precision chosen)
    data: DataInfo | None = None
    epoch: int | None = None  # completed epochs
    partial: dict[str, Any] | None = None  # progress into the next epoch of a checkpoint saved on Ctrl-C
    optimizer: dict[str, Any] | None = None  # the optimiser's state dict
    ema: dict[str, Any] | None = None  # the weight average: {"module": state dict, "updates": count}
    lookahead: dict[str, Any] | None = None  # Lookahead's slow weights: {"slow": {parameter name: tensor}}
    rng: dict[str, Any] | None = None  # the global RNG states, as tensors
    world_size: int = 1  # processes that trained it: data shards and the global batch depend on it
    schedule: dict[str, Any] | None = None  # epoch, step and lr when saved: a record, not state to restore

    @property
    def weights(self) -> dict[str, Any]:
        """The reported weights: the average's with EMA, else the trained model's."""
        return self.ema["module"] if self.ema is not None else self.model

    @property
    def steps_into_next_epoch(self) -> int:
        """Optimiser steps of the unfinished epoch this checkpoint holds (0 unless saved on Ctrl-C)."""
        return int((self.partial or {}).get("step", 0))

    def to_state(self) -> dict[str, Any]:
        """The plain-data form `save_checkpoint` writes: what `from_state` turns back into an equal record."""
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        state.update(spec=self.spec.to_dict(), recipe=self.recipe.to_dict() if self.recipe else None,
                     data=self.data.to_dict() if self.data else None)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], needs: Sequence[str] = ("spec", "model")) -> Checkpoint:
        """Check and convert a checkpoint's entries; a ValueError names a missing (`needs`) or damaged one."""
        missing = [key for key in dict.fromkeys(("spec", "model", *needs)) if state.get(key) is None]
        if missing:
            raise ValueError(f"it lacks {', '.join(map(repr, missing))}")
        fields = {f.name for f in dataclasses.fields(cls)}
        entries = {k: v for k, v in state.items() if k in fields and v is not None}
        for key in ("model", "partial", "optimizer", "ema", "lookahead", "rng", "schedule"):
            if not isinstance(entries.get(key, {}), dict):
                raise ValueError(f"its {key!r} entry is not a dict")
        if "ema" in entries and not isinstance(entries["ema"].get("module"), dict):
            raise ValueError("its 'ema' entry holds no weights ('module')")
        for key, kind, described in (("arch", str, "a string"), ("epoch", int, "an integer"),
                                     ("world_size", int, "an integer")):
            if key in entries and (not isinstance(entries[key], kind) or isinstance(entries[key], bool)):
                raise ValueError(f"its {key!r} entry is not {described}")
        entries["spec"] = _typed("spec", ResNetSpec.from_dict, entries.get("spec"))
        if "recipe" in entries:
            entries["recipe"] = _typed("recipe", Recipe.from_dict, entries["recipe"])
        if "data" in entries:
            entries["data"] = DataInfo.from_dict(entries["data"])
        return cls(**entries)


def _typed(key: str, convert: Any, value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"its {key!r} entry is not a dict")
    try:
        return convert(value)
    except (BudgetnetError, TypeError) as e:  # TypeError: a field given a value of the wrong kind
        raise ValueError(f"its {key!r} entry is invalid ({e})") from None
