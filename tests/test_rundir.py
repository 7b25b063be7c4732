"""The run directory contract: RunDir names every file a run's verbs write, a checkpoint is typed and checked
once when it is loaded (a damaged entry is one line), today's checkpoint format loads, and no verb imports
another verb."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
from pathlib import Path

import pytest
import torch
from hostile import fails_in_one_line, tiny, train_argv  # noqa: F401  (tiny is a fixture)
from train_fixtures import TINY_SPEC

import budgetnet.runrecord as runrecord
from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint, save_checkpoint
from budgetnet.cli.main import USAGE_ERROR, VERB_MODULES, main
from budgetnet.errors import CheckpointError
from budgetnet.model import build_model
from budgetnet.rundir import RunDir
from budgetnet.runrecord import DataInfo
from budgetnet.train.recipe import Recipe

SRC = Path(__file__).resolve().parents[1] / "src" / "budgetnet"
CLASSES = [f"class{i}" for i in range(10)]
DATA = {"classes": CLASSES, "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.25, 0.25],
        "source": {"format": "binary", "path": "/data/cifar", "fingerprint": "abc", "checksums": "match",
                   "lossy": False},
        "augment": "online", "subset": None, "val_split": 0, "train_rows": 64}


def format_1_state() -> dict:
    """A checkpoint's content exactly as training writes it (format 1): plain dicts, lists and tensors."""
    model = build_model(TINY_SPEC)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return {"kind": "budgetnet-checkpoint", "version": 1, "arch": "tiny.json", "spec": TINY_SPEC.to_dict(),
            "recipe": Recipe(epochs=2).to_dict(), "data": DATA, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "epoch": 1, "partial": None,
            "schedule": {"epoch": 1, "step": 0, "lr": 0.1}, "rng": {"torch": torch.get_rng_state()}, "ema": None,
            "world_size": 1}


def test_a_format_1_checkpoint_loads_as_typed_records(tmp_path: Path) -> None:
    raw = format_1_state()
    torch.save(raw, tmp_path / "old.pt")  # as written before checkpoints had typed records
    checkpoint = load_checkpoint(tmp_path / "old.pt", needs=("arch", "recipe", "optimizer", "epoch", "rng", "data"))
    assert checkpoint.spec == TINY_SPEC and checkpoint.recipe == Recipe(epochs=2) and checkpoint.arch == "tiny.json"
    assert checkpoint.data == DataInfo(tuple(CLASSES), (0.5, 0.4, 0.3), (0.25,) * 3, DATA["source"], "online",
                                       None, 0, 64)
    assert checkpoint.data.source_path == "/data/cifar" and checkpoint.data.fingerprint == "abc"
    assert checkpoint.epoch == 1 and checkpoint.steps_into_next_epoch == 0 and checkpoint.weights is checkpoint.model
    state = checkpoint.to_state()  # back to the same plain entries, key for key, plus entries added since
    assert {**{k: v for k, v in raw.items() if k not in ("kind", "version", "model", "optimizer", "rng")},
            "lookahead": None} == {k: v for k, v in state.items() if k not in ("model", "optimizer", "rng")}
    assert json.dumps(checkpoint.data.to_dict()) == json.dumps(DATA)  # data.json's keys, in data.json's order


def test_a_saved_record_loads_equal(tmp_path: Path) -> None:
    checkpoint = load_checkpoint(_saved(tmp_path / "run", format_1_state()), needs=FOR_INFERENCE)
    save_checkpoint(tmp_path / "again.pt", checkpoint.to_state())
    again = load_checkpoint(tmp_path / "again.pt", needs=FOR_INFERENCE)
    assert dataclasses.replace(again, model=None, optimizer=None, rng=None) == \
        dataclasses.replace(checkpoint, model=None, optimizer=None, rng=None)


def _saved(run_dir: Path, state: dict) -> Path:
    """`state` saved as the checkpoint of a run directory; returns the directory."""
    save_checkpoint(RunDir(run_dir).checkpoint, {k: v for k, v in state.items() if k not in ("kind", "version")})
    return run_dir


@pytest.mark.parametrize("entry, value, expected", [
    ("spec", {"stages": []}, "its 'spec' entry is invalid (stages must hold at least one stage"),
    ("spec", "resnet", "its 'spec' entry is not a dict"),
    ("recipe", {"epochs": 2, "warp": 9}, "its 'recipe' entry is invalid (unknown recipe field(s) warp)"),
    ("recipe", {"epochs": "two"}, "its 'recipe' entry is invalid"),
    ("data", {**DATA, "mean": [0.5, "x", 0.3]}, "its 'data' entry needs a list of class names"),
    ("data", {**DATA, "std": [0.2]}, "its 'data' entry needs a list of class names"),
    ("data", {**DATA, "source": "cifar"}, "its 'data' entry's source is not a JSON object"),
    ("epoch", "1", "its 'epoch' entry is not an integer"),
    ("arch", 3, "its 'arch' entry is not a string"),
    ("ema", {"updates": 3}, "its 'ema' entry holds no weights"),
    ("lookahead", [1, 2], "its 'lookahead' entry is not a dict"),
    ("model", [1, 2], "its 'model' entry is not a dict"),
])
def test_a_damaged_entry_is_one_line_naming_it(entry, value, expected, tmp_path, capsys) -> None:
    run = _saved(tmp_path / "run", {**format_1_state(), entry: value})
    with pytest.raises(CheckpointError, match=f"^{run / 'checkpoints' / 'last.pt'} is a damaged budgetnet checkpoint"):
        load_checkpoint(run)
    fails_in_one_line(capsys, ["export", run, "--out", tmp_path / "m.onnx"], USAGE_ERROR, expected)


def test_a_damaged_data_json_is_one_line(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.data_path.write_text(json.dumps({**DATA, "classes": "cat"}))
    with pytest.raises(Exception, match="data.json is damaged: 'data' entry needs a list of class names"):
        run.read_data()


def test_a_checkpoint_is_checked_once_per_verb(tiny, monkeypatch, capsys) -> None:
    run = tiny["tmp"] / "run"
    assert main(train_argv(tiny, run)) == 0
    calls = []
    real = runrecord.Checkpoint.from_state.__func__
    monkeypatch.setattr(runrecord.Checkpoint, "from_state",
                        classmethod(lambda cls, *a, **k: calls.append(1) or real(cls, *a, **k)))
    for argv in (["eval", run], ["export", run], ["card", run], ["predict", run, tiny["tmp"]]):
        calls.clear()
        main([str(a) for a in argv])
        assert len(calls) == 1, argv


def test_every_file_a_run_gets_is_where_rundir_says(tiny, capsys) -> None:
    run = RunDir(tiny["tmp"] / "run")
    assert main(train_argv(tiny, run.path, "--val-split", "5")) == 0
    trained = {run.path / ".budgetnet-run", run.spec_path, run.recipe_path, run.data_path, run.env_path,
               run.metrics_path, run.val_indices_path, run.checkpoint}
    assert set(_files(run.path)) == trained
    for verb in (["eval"], ["export"], ["quantize", "--calib", "16", "--seconds", "0.05"], ["card"], ["plot"]):
        assert main([verb[0], str(run.path), *verb[1:]]) == 0, verb
    made = {run.eval_path, run.confusion_path, run.onnx_path, run.int8_path, run.quantize_path, run.card_path,
            run.curves_path}
    assert set(_files(run.path)) == trained | made
    assert run.read_eval()["epoch"] == 1 and run.read_quantize()["epoch"] == 1
    assert run.read_recipe() == load_checkpoint(run.path).recipe and run.read_data() == load_checkpoint(run.path).data
    assert RunDir.of(run.checkpoint) == RunDir.of(run.path) == RunDir.holding(run.onnx_path) == run
    assert RunDir.holding(tiny["tmp"] / "model.onnx") is None and RunDir.of(tiny["tmp"] / "m.pt") == RunDir(tiny["tmp"])


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_only_rundir_spells_the_checkpoint_file() -> None:
    spelled = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if "last.pt" in p.read_text()]
    assert spelled == ["rundir.py"]


def _imported(module: str) -> set[str]:
    """Every module the source of `module` imports, at any depth (also inside functions)."""
    tree = ast.parse(Path(importlib.import_module(module).__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("verb", VERB_MODULES)
def test_no_verb_imports_another_verb(verb: str) -> None:
    others = {f"budgetnet.cli.{other}" for other in VERB_MODULES if other != verb}
    assert not _imported(f"budgetnet.cli.{verb}") & others


def test_the_verb_rule_sees_an_import_inside_a_function(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "verb_probe.py").write_text("def run():\n    from budgetnet.cli import export\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "budgetnet.cli.export" in _imported("verb_probe")
