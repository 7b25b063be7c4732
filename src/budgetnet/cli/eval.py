"""`budgetnet eval RUN_DIR_OR_CHECKPOINT`: test accuracy, per-class accuracy and a confusion matrix."""

from __future__ import annotations

import argparse
import json
import sys


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
    """Evaluate, write eval.json and confusion.png into the checkpoint's run, and print the result."""
    from budgetnet.train.report import evaluate_run

    evaluation = evaluate_run(args.checkpoint, args.data, args.device, args.tta, args.download)
    result, run_dir = evaluation.result, evaluation.run
    if not result["same_data_as_training"]:
        print(f"note: {evaluation.data_path} is not the dataset this run was trained with", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"test accuracy {100 * result['accuracy']:.2f}% on {result['images']} images "
          f"(loss {result['loss']:.4f}, flip TTA {'on' if args.tta else 'off'})")
    for name, acc in result["per_class_accuracy"].items():
        print(f"  {name:12s} {'n/a' if acc is None else f'{100 * acc:6.2f}%'}")
    print(f"wrote {run_dir.eval_path} and {run_dir.confusion_path}")
    return 0
