"""`budgetnet plot RUN_DIR...`: loss and accuracy curves (the paper's Figure 8) from metrics.jsonl alone."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `plot` to the CLI."""
    p = verbs.add_parser("plot", help="loss and accuracy curves of one or more runs (Figure 8)")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories; several overlay in one figure")
    p.add_argument("--out", help="output image (default RUN_DIR/curves.png for one run, curves.png for several)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Draw the curves to a PNG (or any format matplotlib knows from the suffix)."""
    from budgetnet.train.figures import plot_runs

    print(f"wrote {plot_runs(args.runs, args.out)}")
    return 0
