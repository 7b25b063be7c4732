"""`budgetnet eval RUN_DIR_OR_CHECKPOINT`: test accuracy, per-class accuracy and a confusion matrix."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `eval` to the CLI."""
    p = verbs.add_parser("eval", help="test accuracy, per-class accuracy and confusion matrix of a run")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT", help="a run directory or a .pt checkpoint")
    p.add_argument("--data", help="test data (default: the dataset recorded in the run's data.json)")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation: average image and mirror")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 if --data holds none")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write eval.json and confusion.png beside the checkpoint's run, and print the result."""
    import numpy as np

    from budgetnet.checkpoint import FOR_INFERENCE, load_checkpoint, resolve_checkpoint
    from budgetnet.data import load_cifar
    from budgetnet.fsutil import atomic_write_text
    from budgetnet.outputs import check_file_out
    from budgetnet.train.figures import plot_confusion
    from budgetnet.train.report import evaluate_checkpoint, run_dir_of
    from budgetnet.train.session import pick_device

    path = resolve_checkpoint(args.checkpoint)
    out = run_dir_of(path)
    for name in ("eval.json", "confusion.png"):
        check_file_out(out / name)
    state = load_checkpoint(path, needs=FOR_INFERENCE)
    data_path = args.data or (state["data"].get("source") or {}).get("path")
    data = load_cifar(data_path, download=args.download)
    result = evaluate_checkpoint(state, data, pick_device(args.device), args.tta)
    result["checkpoint"] = str(path)
    atomic_write_text(out / "eval.json", json.dumps(result, indent=2) + "\n")
    partial = f" + {result['steps_into_next_epoch']} steps" if result["steps_into_next_epoch"] else ""
    title = f"{result['arch']}, epoch {result['epoch']}{partial}: {100 * result['accuracy']:.2f}%{' (flip TTA)' if args.tta else ''}"
    plot_confusion(np.array(result["confusion"]), result["classes"], out / "confusion.png", title)
    if not result["same_data_as_training"]:
        print(f"note: {data_path} is not the dataset this run was trained with", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"test accuracy {100 * result['accuracy']:.2f}% on {result['images']} images "
          f"(loss {result['loss']:.4f}, flip TTA {'on' if args.tta else 'off'})")
    for name, acc in result["per_class_accuracy"].items():
        print(f"  {name:12s} {'n/a' if acc is None else f'{100 * acc:6.2f}%'}")
    print(f"wrote {out / 'eval.json'} and {out / 'confusion.png'}")
    return 0
