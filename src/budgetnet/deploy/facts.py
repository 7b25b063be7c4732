"""A model card's key facts for the `serve` page, read from the model file and the run directory it sits in.

Nothing is measured here. Accuracy comes from the run's own files (metrics.jsonl, eval.json,
export/quantize.json) and is shown only when it belongs to the epoch or checkpoint of the file
being served; otherwise the panel says which command records it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from budgetnet.counts import count_macs, count_params
from budgetnet.deploy.card import percent, views_text
from budgetnet.deploy.predict import Classifier
from budgetnet.deploy.rundata import describe_source
from budgetnet.rundir import RunDir
from budgetnet.spec import ResNetSpec
from budgetnet.train.recipe import tta_text

RECIPE_FIELDS = ("epochs", "batch_size", "lr", "augment", "precision")  # the recipe fields the panel shows


def run_dir_of(model_path: str | Path) -> RunDir | None:
    """The run directory of a model: the path itself, or RUN for RUN/checkpoints/*.pt and RUN/export/*.onnx."""
    path = Path(model_path)
    run = RunDir(path) if path.is_dir() else RunDir.holding(path)
    return run if run is not None and run.metrics_path.is_file() else None


def _epoch(about: dict[str, Any]) -> int | None:
    try:
        return int(about.get("epoch"))  # an ONNX file stores it as a string
    except (TypeError, ValueError):
        return None


def _recipe(recipe: dict[str, Any]) -> str:
    shown = ", ".join(f"{k.replace('_', ' ')} {recipe[k]}" for k in RECIPE_FIELDS if recipe.get(k) is not None)
    return f"`{recipe.get('name', '?')}`" + (f" ({shown})" if shown else "")


def _accuracy(run: RunDir | None, epoch: int | None, shift: int | None) -> list[tuple[str, str]]:
    if run is None:
        return [("Test accuracy", "not recorded beside this file (serve its run directory to see it)")]
    entry = next((m for m in run.read_metrics() if m["epoch"] == epoch), None)
    if entry is None:
        return [("Test accuracy", f"no epoch {epoch} in {run.metrics_path}")]
    rows = [("Test accuracy", f"{views_text(entry, shift=shift)} (epoch {epoch}, recorded by training)")]
    evaluation = run.read_eval()
    if evaluation and evaluation.get("epoch") == epoch:
        rows.append(("`budgetnet eval`", f"{percent(evaluation.get('accuracy'))} on {evaluation.get('images')} test "
                                         f"images, TTA {tta_text(bool(evaluation.get('tta')), evaluation.get('tta_shift') or 0)}"))
    return rows


def _int8(run: RunDir | None, about: dict[str, Any], checkpoint_sha: str | None) -> list[tuple[str, str]]:
    report = run.read_quantize() if run else None
    if report and checkpoint_sha and report.get("checkpoint_sha256") == checkpoint_sha:
        f, q = report["fp32"], report["int8"]
        return [("Int8 (measured by `budgetnet quantize`)",
                 f"{percent(q['test_acc'])} vs fp32 {percent(f['test_acc'])} on {report['test_images']:,} test images; "
                 f"{report['size_ratio']:.2f}x smaller; {report['speedup']['1']:.2f}x the fp32 images/s at batch 1 "
                 f"on {report.get('env', {}).get('cpu', '?')}")]
    if about.get("precision") == "int8":
        return [("Int8", "accuracy not recorded for this file: run `budgetnet quantize RUN --data PATH`")]
    return []


def model_facts(model: Classifier, model_path: str | Path) -> list[tuple[str, str]]:
    """(label, value) rows: file, architecture, parameters, MACs, recipe, data, recorded accuracy, int8 figures."""
    about = model.about
    recipe = about.get("recipe") or {}
    spec = ResNetSpec.from_dict(about["spec"])
    file = Path(about["file"])
    kind = "PyTorch checkpoint, fp32" if model.backend == "pytorch" else f"ONNX {about.get('precision', '?')}"
    run, epoch = run_dir_of(model_path), _epoch(about)
    if model.backend == "pytorch":
        from budgetnet.deploy.onnx_export import file_sha256

        checkpoint_sha = file_sha256(file)
    else:
        checkpoint_sha = about.get("checkpoint_sha256")
    rows = [("Model file", f"`{file.name}` ({kind}, run by {model.backend})"),
            ("Architecture", f"`{about.get('arch') or 'custom'}`: " + ", ".join(
                f"{s.blocks}x{s.width}" for s in spec.stages) + " (blocks x width per stage)"),
            ("Parameters", f"{count_params(spec):,}"), ("MACs per 32x32 image", f"{count_macs(spec):,}"),
            ("Recipe", f"{_recipe(recipe)}; saved at epoch {epoch}"),
            ("Data", describe_source(about.get("data_source") or {}))]
    return rows + _accuracy(run, epoch, recipe.get("tta_shift")) + _int8(run, about, checkpoint_sha)


def facts_markdown(rows: list[tuple[str, str]]) -> str:
    """The rows as a markdown list, `- **label**: value`."""
    return "\n".join(f"- **{label}**: {value}" for label, value in rows)
