"""`budgetnet eval RUN_DIR_OR_CHECKPOINT`: test accuracy, per-class accuracy and a confusion matrix."""

from __future__ import annotations

import argparse
import json
import sys

from budgetnet.cli.argtypes import nonneg_int
from budgetnet.train.recipe import MAX_TTA_SHIFT, tta_text


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `eval` to the CLI."""
    p = verbs.add_parser("eval", help="test accuracy, per-class accuracy and confusion matrix of a run")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT", help="a run directory or a .pt checkpoint")
    p.add_argument("--data", help="test data (default: the dataset recorded in the run's data.json)")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation: average image and mirror")
    p.add_argument("--tta-shift", type=tta_shift, default=0, metavar="PX",
                   help=f"with --tta, also average both views moved diagonally by +-PX px: 6 views (0-{MAX_TTA_SHIFT}; "
                        "default 0, flip only)")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="test: the test set (default); val: the training images the run held out with --val-split")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 if --data holds none")
    p.set_defaults(run=run)


def tta_shift(text: str) -> int:
    """--tta-shift's value: 0 to MAX_TTA_SHIFT px."""
    value = nonneg_int(text)
    if value > MAX_TTA_SHIFT:
        raise argparse.ArgumentTypeError(f"must be 0-{MAX_TTA_SHIFT} px, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Evaluate, write eval.json and confusion.png into the checkpoint's run, and print the result."""
    from budgetnet.train.report import evaluate_run

    evaluation = evaluate_run(args.checkpoint, args.data, args.device, args.tta, args.download, args.tta_shift,
                              args.split)
    result, run_dir = evaluation.result, evaluation.run
    if not result["same_data_as_training"]:
        print(f"note: {evaluation.data_path} is not the dataset this run was trained with", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.split} accuracy {100 * result['accuracy']:.2f}% on {result['images']} images "
          f"(loss {result['loss']:.4f}, TTA {tta_text(args.tta, args.tta_shift)})")
    for label, key in (("single view", "single_view_accuracy"), ("flip pair", "flip_accuracy")):
        if result[key] is not None:
            print(f"  {label}: {100 * result[key]:.2f}%")
    for name, acc in result["per_class_accuracy"].items():
        print(f"  {name:12s} {'n/a' if acc is None else f'{100 * acc:6.2f}%'}")
    print("wrote {} and {}".format(*run_dir.eval_paths(args.split)))
    return 0
