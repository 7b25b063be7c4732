"""`budgetnet quantize RUN_DIR --data PATH`: int8 ONNX, calibrated on training images, with a measured report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from budgetnet.cli.argtypes import nonneg_float, nonneg_int, positive_int

TARGETS = {"size_ratio_min": 3.5, "accuracy_drop_max_points": 0.5}  # the acceptance targets


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `quantize` to the CLI."""
    p = verbs.add_parser("quantize", help="int8 post-training quantization of a run's ONNX export, with a report")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    p.add_argument("--data", metavar="PATH", help="dataset: calibration from its training split, accuracy on its "
                   "test split (default: the path recorded in the run)")
    p.add_argument("--calib", type=positive_int, default=1000, metavar="N",
                   help="training images to calibrate on (default 1000)")
    p.add_argument("--out", metavar="FILE", help="int8 model path (default RUN_DIR/export/model.int8.onnx)")
    p.add_argument("--seconds", type=nonneg_float, default=2.0, help="timing length per speed measurement (default 2)")
    p.add_argument("--threads", type=nonneg_int, default=1,
                   help="CPU threads for the speed measurement (default 1: stable on a shared machine; 0: all cores)")
    p.set_defaults(run=run)


def fresh_fp32_export(run_dir: str, state: dict[str, Any], sha256: str,
                      check_images: Any) -> tuple[Path, "LogitCheck | None"]:  # noqa: F821
    """RUN_DIR/export/model.onnx, re-exported unless it already comes from this exact checkpoint."""
    from budgetnet.cli.export import default_export_path
    from budgetnet.deploy.onnx_export import check_logits, export_onnx, open_onnx
    from budgetnet.errors import CheckpointError

    path = default_export_path(run_dir, "model.onnx")
    try:
        if open_onnx(path)[1].get("checkpoint_sha256") == sha256:
            return path, None
    except CheckpointError:
        pass  # missing or unreadable: export it below
    export_onnx(state, path, sha256)
    return path, check_logits(state, open_onnx(path)[0], check_images)


def run(args: argparse.Namespace) -> int:
    """Quantize, measure both files in this run, print the comparison and write quantize.json."""
    from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint, resolve_checkpoint
    from budgetnet.cli.export import default_export_path
    from budgetnet.deploy.onnx_export import file_sha256
    from budgetnet.deploy.quantize import calibration_sample, compare_models, quantize_onnx
    from budgetnet.deploy.rundata import describe_source, require_dataset, run_data_path
    from budgetnet.fsutil import atomic_write_text
    from budgetnet.outputs import check_file_out

    checkpoint = resolve_checkpoint(args.run_dir)
    int8_path = Path(args.out) if args.out else default_export_path(args.run_dir, "model.int8.onnx")
    for out in (int8_path, int8_path.parent / "quantize.json", default_export_path(args.run_dir, "model.onnx")):
        check_file_out(out)
    state = load_checkpoint(checkpoint, needs=FOR_INFERENCE)
    sha256 = file_sha256(checkpoint)
    dataset = require_dataset(run_data_path(state, args.data))
    fp32_path, check = fresh_fp32_export(args.run_dir, state, sha256, dataset.test_images[:256])
    if check is not None:
        print(f"exported {fp32_path} (on 256 test images: {check.describe()}{'' if check.ok else ', MISMATCH'})")
    data = state["data"]
    calib = calibration_sample(dataset.train_images, args.calib)
    quantize_onnx(fp32_path, int8_path, calib, data["mean"], data["std"])
    report = compare_models(fp32_path, int8_path, dataset.test_images, dataset.test_labels, args.seconds, args.threads)
    report.update(_context(state, dataset, sha256, len(calib), args.threads))
    report["targets_met"] = {
        "size": report["size_ratio"] >= TARGETS["size_ratio_min"],
        "accuracy": report["accuracy_drop_points"] <= TARGETS["accuracy_drop_max_points"],
        "speed": all(v > 1.0 for v in report["speedup"].values()),
    }
    report_path = int8_path.parent / "quantize.json"
    atomic_write_text(report_path, json.dumps(report, indent=2) + "\n")
    _print(report, describe_source(dataset.source), report_path)
    return 0


def _context(state: dict[str, Any], dataset: Any, sha256: str, calib: int, threads: int) -> dict[str, Any]:
    import onnxruntime
    import torch

    from budgetnet import __version__
    from budgetnet.train.rundir import environment

    recorded = (state.get("data") or {}).get("source") or {}
    return {
        "format": 1,
        "checkpoint_sha256": sha256,
        "epoch": state.get("epoch"),
        "calibration": {"images": calib, "split": "train", "seed": 0, "method": "MinMax"},
        "data_source": dataset.source,
        "same_data_as_training": recorded.get("fingerprint") == dataset.source.get("fingerprint"),
        "targets": TARGETS,
        "env": {"cpu": environment(torch.device("cpu"))["cpu"], "threads": threads or "all cores",
                "onnxruntime": onnxruntime.__version__,
                "torch": torch.__version__, "budgetnet": __version__},
    }


def _print(r: dict[str, Any], source: str, report_path: Path) -> None:
    f, q = r["fp32"], r["int8"]
    calib = r["calibration"]["images"]
    print(f"test split of {source}: {r['test_images']} images; calibrated on {calib} training images")
    if not r["same_data_as_training"]:
        print("note: this dataset's fingerprint differs from the one the run was trained on")
    print(f"{'':24}{'fp32':>12}{'int8':>12}{'ratio':>9}")
    print(f"{'file bytes':24}{f['bytes']:>12,}{q['bytes']:>12,}{r['size_ratio']:>8.2f}x")
    change = 100 * (q["test_acc"] - f["test_acc"])
    print(f"{'test accuracy %':24}{100 * f['test_acc']:>12.2f}{100 * q['test_acc']:>12.2f}{change:>+8.2f}pt")
    for b in ("1", "256"):
        fs, qs = f["images_per_s"][b], q["images_per_s"][b]
        print(f"{'images/s, batch ' + b:24}{fs:>12,.0f}{qs:>12,.0f}{r['speedup'][b]:>8.2f}x")
    print(f"{'top-1 agreement %':24}{100 * r['top1_agreement']:>24.2f}")
    met = ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in r["targets_met"].items())
    print(f"targets (>= 3.5x smaller, <= 0.5 pt lost, int8 faster): {met}")
    print(f"wrote {report_path}")
