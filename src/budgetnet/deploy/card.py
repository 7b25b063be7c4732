"""A markdown model card built only from the files a run directory holds; nothing is re-measured here.

Missing pieces (no eval.json, no export, no quantize.json) are said in the card, with the
command that produces them, rather than computed on the fly: a card never shows a number
that was not written down by the step that measured it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from budgetnet.counts import DEFAULT_BUDGET, count_macs, count_params
from budgetnet.deploy.rundata import describe_source
from budgetnet.errors import BudgetnetError
from budgetnet.presets import PRESETS
from budgetnet.rundir import RunDir, read_record
from budgetnet.spec import ResNetSpec
from budgetnet.train.recipe import tta_text

MISSING_MARKS = ("not measured yet", "Not done yet")  # how a card line says a step has not run


def _exports(run: RunDir) -> tuple[tuple[Path, str], ...]:
    return ((run.checkpoint, "PyTorch checkpoint (fp32)"), (run.onnx_path, "ONNX fp32"),
            (run.int8_path, "ONNX int8 (QDQ)"))


def _metrics(run: RunDir) -> list[dict[str, Any]]:
    metrics = run.read_metrics()
    if not metrics:
        raise BudgetnetError(f"{run.metrics_path} is empty: the run has not finished an epoch yet")
    return metrics


def percent(fraction: float | None) -> str:
    """A fraction as `93.76%`, or `n/a`."""
    return "n/a" if fraction is None else f"{100 * fraction:.2f}%"


def views_text(entry: dict[str, Any], split: str = "test", shift: int | None = None) -> str:
    """A metrics line's accuracy on `split` with the fewer-view figures it recorded: "94.01% with TTA flip +
    +-1 px (6 views), 93.80% flip pair, 93.40% single view" (`shift` is the recipe's tta_shift; unknown, the
    views are only counted), "93.72% with flip TTA, 93.37% single view", or "93.37%"."""
    text = percent(entry.get(f"{split}_acc"))
    single, flip = entry.get(f"{split}_acc_single_view"), entry.get(f"{split}_acc_flip")
    if flip is not None:
        views = f"TTA {tta_text(True, shift)}" if shift else "6-view TTA"
        return f"{text} with {views}, {percent(flip)} flip pair, {percent(single)} single view"
    return text + (f" with flip TTA, {percent(single)} single view" if single is not None else "")


def train_command(run_dir: Path, arch: str, recipe: dict[str, Any], data_path: str) -> str:
    """The `budgetnet train` line that reproduces this run's recipe field by field."""
    arch_arg = arch if arch in PRESETS else str(RunDir(run_dir).spec_path)
    parts = ["budgetnet train", f"--arch {arch_arg}", f"--data {data_path}", f"--recipe {recipe.get('name', 'paper')}"]
    for key, value in recipe.items():
        if key == "name" or value is None:
            continue
        flag = key.replace("_", "-")
        if isinstance(value, bool):  # the trainer's on/off flags are --flag / --no-flag
            parts.append(f"--{flag}" if value else f"--no-{flag}")
        elif isinstance(value, list):
            parts.append(f"--{flag} {','.join(map(str, value)) or 'none'}")
        else:
            parts.append(f"--{flag} {value}")
    return " ".join(parts) + f" --out {run_dir}-reproduced"


def _spec_section(arch: str, spec: ResNetSpec) -> list[str]:
    params, macs = count_params(spec), count_macs(spec)
    lines = ["## Architecture", "", f"- Name: `{arch}`", f"- Parameters: {params:,} (budget {DEFAULT_BUDGET:,}: "
             f"{'within' if params <= DEFAULT_BUDGET else 'OVER'})", f"- MACs per 32x32 image: {macs:,}",
             f"- Stem: {spec.stem_width} channels, {spec.stem_kernel}x{spec.stem_kernel} conv, stride 1",
             f"- Block convs: {spec.conv1_kernel}x{spec.conv1_kernel} then {spec.conv2_kernel}x{spec.conv2_kernel}; "
             f"projection skips {spec.skip_kernel}x{spec.skip_kernel}",
             f"- Activation {spec.activation}; global {spec.head_pool} pool, then the linear head"
             f"{f', logits x {spec.logit_scale:g}' if spec.logit_scale != 1.0 else ''}", "",
             "| stage | blocks | width | stride |", "|---|---|---|---|"]
    lines += [f"| {i + 1} | {s.blocks} | {s.width} | {s.stride} |" for i, s in enumerate(spec.stages)]
    return lines + ["", "Spec JSON (`spec.json`):", "", "```json", spec.to_json(), "```", ""]


def _files_section(run: RunDir, checkpoint_sha: str) -> list[str]:
    from budgetnet.deploy.onnx_export import file_sha256, open_onnx

    lines = ["## Files", "", "| file | what | bytes | sha256 |", "|---|---|---|---|"]
    notes = []
    for path, what in _exports(run):
        rel = run.relative(path)
        if not path.is_file():
            notes.append(f"- `{rel}` is absent.")
            continue
        sha = checkpoint_sha if path == run.checkpoint else file_sha256(path)
        lines.append(f"| `{rel}` | {what} | {path.stat().st_size:,} | `{sha}` |")
        if path != run.checkpoint and open_onnx(path)[1].get("checkpoint_sha256") != checkpoint_sha:
            notes.append(f"- `{rel}` was exported from an older checkpoint: re-run export/quantize.")
    return lines + [""] + notes + ([""] if notes else [])


def _results_section(run: RunDir, out_dir: Path, metrics: list[dict[str, Any]], evaluation: Any,
                     shift: int | None) -> list[str]:
    last = metrics[-1]
    lines = ["## Results", "", f"- Final-epoch test accuracy (epoch {last['epoch']}, the last checkpoint; no epoch "
             f"chosen on the test set): **{views_text(last, shift=shift)}**"]
    if "val_acc" in last:
        lines.append(f"- Final-epoch validation accuracy: {views_text(last, 'val', shift)}")
    if evaluation is None:
        return lines + ["- Per-class accuracy and confusion matrix: not measured yet. Run "
                        f"`budgetnet eval {run.path}`, then `budgetnet card {run.path}` again.", ""]
    lines += [f"- `budgetnet eval` (epoch {evaluation.get('epoch')}, {evaluation.get('images')} test images, "
              f"TTA {tta_text(bool(evaluation.get('tta')), evaluation.get('tta_shift') or 0)}): "
              f"{percent(evaluation.get('accuracy'))}"]
    if evaluation.get("epoch") != last["epoch"]:
        lines.append(f"- Note: eval.json is from epoch {evaluation.get('epoch')}, not the last one: re-run eval.")
    lines += ["", "| class | test accuracy |", "|---|---|"]
    lines += [f"| {name} | {percent(acc)} |" for name, acc in evaluation.get("per_class_accuracy", {}).items()]
    if run.confusion_path.is_file():
        lines += ["", f"![confusion matrix]({os.path.relpath(run.confusion_path, out_dir)})"]
    return lines + [""]


def _quantize_section(run_dir: Path, report: Any) -> list[str]:
    if report is None:
        return ["## Int8 quantization", "", f"Not done yet: run `budgetnet quantize {run_dir} --data PATH`.", ""]
    f, q = report["fp32"], report["int8"]
    env = report.get("env", {})
    lines = ["## Int8 quantization", "",
             f"ONNX Runtime static quantization (QDQ, per-channel int8 weights, uint8 activations), calibrated on "
             f"{report['calibration']['images']} training images (seed {report['calibration']['seed']}); measured "
             f"by `budgetnet quantize` on {env.get('cpu', '?')} ({env.get('threads', '?')} thread(s), onnxruntime "
             f"{env.get('onnxruntime', '?')}), test split of {report['test_images']} images.", "",
             "| | fp32 | int8 | ratio |", "|---|---|---|---|",
             f"| file bytes | {f['bytes']:,} | {q['bytes']:,} | {report['size_ratio']:.2f}x smaller |",
             f"| test accuracy | {percent(f['test_acc'])} | {percent(q['test_acc'])} | "
             f"{100 * (q['test_acc'] - f['test_acc']):+.2f} points |"]
    for b in ("1", "256"):
        lines.append(f"| CPU images/s, batch {b} | {f['images_per_s'][b]:,.0f} | {q['images_per_s'][b]:,.0f} | "
                     f"{report['speedup'][b]:.2f}x |")
    met = report.get("targets_met", {})
    lines += ["", f"Top-1 agreement fp32 vs int8: {percent(report['top1_agreement'])}. Targets (>= 3.5x smaller, "
              f"<= 0.5 points lost, int8 faster): " + ", ".join(f"{k} {'met' if v else '**missed**'}"
                                                                 for k, v in met.items())]
    if not report.get("same_data_as_training", True):
        lines.append("Note: quantize was measured on a dataset other than the one the run was trained on.")
    return lines + [""]


def build_card(run_dir: str | Path, out: str | Path) -> str:
    """The markdown card of `run_dir`, with links relative to where it will be written (`out`)."""
    from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint
    from budgetnet.deploy.onnx_export import file_sha256

    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    checkpoint = load_checkpoint(run_dir, needs=FOR_INFERENCE)
    spec, data = checkpoint.spec, checkpoint.data
    arch = checkpoint.arch or "custom"
    recipe = checkpoint.recipe.to_dict() if checkpoint.recipe else {}
    env = read_record(run.env_path) or {}
    source = data.source
    report = run.read_quantize()
    lines = [f"# Model card: {arch}", "", f"Built by `budgetnet card` from the run directory `{run_dir}`; every number "
             "below was measured by the step that wrote the file it comes from.", ""]
    lines += _spec_section(arch, spec)
    lines += ["## Training recipe", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in recipe.items()]
    lines += ["", f"Trained for {checkpoint.epoch} epochs on {env.get('device', '?')} "
              f"({env.get('gpu') or env.get('cpu', '?')}), torch {env.get('torch', '?')}.", "", "## Data", "",
              f"- Source: {describe_source(source)}; fingerprint `{source.get('fingerprint', '?')}`; "
              f"checksums {source.get('checksums', '?')}"]
    if source.get("lossy"):
        lines.append("- **Trained on the lossy JPEG copy of CIFAR-10, not the official lossless images.**")
    lines += [f"- Augmentation: {data.augment}; subset: {data.subset or 'all'}; "
              f"validation split: {data.val_split or 0} images", f"- Classes: {', '.join(data.classes)}",
              f"- Input: uint8 RGB pixels, 32x32; the model normalises them itself as (pixels/255 - mean) / std, "
              f"mean {_floats(data.mean)}, std {_floats(data.std)}",
              ""]
    lines += _results_section(run, Path(out).parent, _metrics(run), run.read_eval(), recipe.get("tta_shift"))
    lines += _quantize_section(run_dir, report)
    lines += _files_section(run, file_sha256(run.checkpoint))
    calib = report["calibration"]["images"] if report else 1000
    quant_data = (report or {}).get("data_source", source).get("path", "PATH")
    lines += ["## Reproduce", "", "```sh", train_command(run_dir, arch, recipe, source.get("path", "PATH")),
              f"budgetnet eval {run_dir}", f"budgetnet export {run_dir} --format onnx",
              f"budgetnet quantize {run_dir} --data {quant_data} --calib {calib}",
              f"budgetnet card {run_dir}", "```", ""]
    return "\n".join(lines)


def write_card(run_dir: str | Path, out: str | Path | None = None) -> tuple[Path, list[str]]:
    """Write the card of `run_dir` to `out` (default: the run's MODEL_CARD.md); returns where, and the
    card's lines that say which steps have not run yet."""
    from budgetnet.fsutil import atomic_write_text
    from budgetnet.outputs import check_file_out

    run = RunDir(Path(run_dir))
    if not run.path.is_dir():
        raise BudgetnetError(f"{run.path} is not a run directory")
    out = check_file_out(out if out is not None else run.card_path)
    text = build_card(run.path, out)
    atomic_write_text(out, text)
    return out, [line.lstrip("- ") for line in text.splitlines() if any(mark in line for mark in MISSING_MARKS)]


def _floats(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"
