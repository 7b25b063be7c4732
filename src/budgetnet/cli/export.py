"""`budgetnet export RUN_DIR --format onnx`: an ONNX file with metadata, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from budgetnet.cli.main import RUN_FAILED
from budgetnet.outputs import check_file_out


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `export` to the CLI."""
    p = verbs.add_parser("export", help="export a trained model to ONNX and check it against PyTorch")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory or a .pt checkpoint")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (only onnx)")
    p.add_argument("--out", metavar="FILE", help="output file (default RUN_DIR/export/model.onnx)")
    p.add_argument("--data", metavar="PATH", help="dataset for the check images (default: the run's recorded one)")
    p.set_defaults(run=run)


def default_export_path(run_dir: str | Path, name: str) -> Path:
    """RUN_DIR/export/NAME, where RUN_DIR is the given directory or the run a checkpoint file belongs to."""
    from budgetnet.train.report import run_dir_of

    run_dir = Path(run_dir)
    return (run_dir if run_dir.is_dir() else run_dir_of(run_dir)) / "export" / name


def export_checked(run_dir: str | Path, out: Path, data: str | None) -> tuple["LogitCheck", str]:  # noqa: F821
    """Export, then compare onnxruntime with PyTorch on real images: (the comparison, what the images were)."""
    from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint, resolve_checkpoint
    from budgetnet.deploy.onnx_export import check_logits, export_onnx, file_sha256, open_onnx
    from budgetnet.deploy.rundata import reference_images

    checkpoint = resolve_checkpoint(run_dir)
    state = load_checkpoint(checkpoint, needs=FOR_INFERENCE)
    export_onnx(state, out, file_sha256(checkpoint))
    session, _ = open_onnx(out)
    reference = reference_images(state, data)
    return check_logits(state, session, reference.images), reference.description


def run(args: argparse.Namespace) -> int:
    """Export and check; exit 1 if onnxruntime and PyTorch disagree beyond the tolerance."""
    out = check_file_out(Path(args.out) if args.out else default_export_path(args.run_dir, "model.onnx"))
    check, described = export_checked(args.run_dir, out, args.data)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, opset 20, dynamic batch)")
    print(f"check on {described}: {check.describe()} {'OK' if check.ok else 'MISMATCH'}")
    return 0 if check.ok else RUN_FAILED
