"""`budgetnet predict MODEL IMAGE_OR_DIR...`: top-k classes of PNG/JPEG files, folders in batches."""

from __future__ import annotations

import argparse
import json
import sys

from budgetnet.cli.argtypes import positive_int

FAILED = 1  # exit code when at least one file could not be classified


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `predict` to the CLI."""
    p = verbs.add_parser(
        "predict",
        help="classify image files with a run dir, checkpoint or ONNX export",
        description="Images of any size are converted to RGB, resized so the shorter side is 32 "
        "(bicubic) and centre-cropped to 32x32; normalisation comes from the model's metadata.",
    )
    p.add_argument("model", metavar="MODEL", help="run directory, .pt checkpoint or exported .onnx")
    p.add_argument("inputs", metavar="IMAGE_OR_DIR", nargs="+", help="PNG/JPEG files, or folders searched recursively")
    p.add_argument("--top-k", type=positive_int, default=3, metavar="K", help="classes to show per image (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                   help="images per forward pass (default 256)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Classify every file; errors go to stderr one line each, and exit code 1 if any file failed."""
    from budgetnet.deploy.predict import Prediction, classify_files, expand_inputs, load_classifier

    model = load_classifier(args.model)
    files = expand_inputs(args.inputs)
    failed = 0
    for result in classify_files(model, files, args.top_k, args.batch_size):
        if not isinstance(result, Prediction):
            print(f"budgetnet: error: {result}", file=sys.stderr)
            failed += 1
        elif args.json:
            top = [{"class": name, "probability": round(p, 6)} for name, p in result.top]
            print(json.dumps({"file": result.path, "top": top}))
        else:
            print(result.path + "  " + "  ".join(f"{name} {100 * p:.1f}%" for name, p in result.top))
    if not files:
        print("budgetnet: error: no PNG/JPEG files found in the given paths", file=sys.stderr)
        return FAILED
    return FAILED if failed else 0
