"""`budgetnet export RUN_DIR --format onnx`: an ONNX file with metadata, checked against PyTorch."""

from __future__ import annotations

import argparse

from budgetnet.cli.main import RUN_FAILED


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `export` to the CLI."""
    p = verbs.add_parser("export", help="export a trained model to ONNX and check it against PyTorch")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory or a .pt checkpoint")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (only onnx)")
    p.add_argument("--out", metavar="FILE", help="output file (default RUN_DIR/export/model.onnx)")
    p.add_argument("--data", metavar="PATH", help="dataset for the check images (default: the run's recorded one)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export and check; exit 1 if onnxruntime and PyTorch disagree beyond the tolerance."""
    from budgetnet.deploy.onnx_export import OPSET, export_checked

    done = export_checked(args.run_dir, args.out, args.data)
    print(f"wrote {done.path} ({done.path.stat().st_size:,} bytes, opset {OPSET}, uint8 pixels in, dynamic batch)")
    print(f"check on {done.images}: {done.check.describe()} {'OK' if done.check.ok else 'MISMATCH'}")
    return 0 if done.check.ok else RUN_FAILED
