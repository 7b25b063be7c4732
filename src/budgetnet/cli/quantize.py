"""`budgetnet quantize RUN_DIR --data PATH`: int8 ONNX, calibrated on training images, with a measured report."""

from __future__ import annotations

import argparse
from typing import Any

from budgetnet.cli.argtypes import nonneg_float, nonneg_int, positive_int


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


def run(args: argparse.Namespace) -> int:
    """Quantize, measure both files in this run, print the comparison and write quantize.json."""
    from budgetnet.deploy.quantize import quantize_run

    done = quantize_run(args.run_dir, args.data, args.calib, args.out, args.seconds, args.threads)
    if done.export_check is not None:
        check = done.export_check
        print(f"exported {done.fp32_path} (on {check.images} test images: {check.describe()}"
              f"{'' if check.ok else ', MISMATCH'})")
    _print(done.report, done.source)
    print(f"wrote {done.report_path}")
    return 0


def _print(r: dict[str, Any], source: str) -> None:
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
