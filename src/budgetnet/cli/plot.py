"""`budgetnet plot RUN_DIR...`: loss and accuracy curves (the paper's Figure 8) from metrics.jsonl alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from budgetnet.errors import BudgetnetError
from budgetnet.outputs import check_image_out


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `plot` to the CLI."""
    p = verbs.add_parser("plot", help="loss and accuracy curves of one or more runs (Figure 8)")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories; several overlay in one figure")
    p.add_argument("--out", help="output image (default RUN_DIR/curves.png for one run, curves.png for several)")
    p.set_defaults(run=run)


def run_labels(paths: list[Path]) -> list[str]:
    """Short labels: the directory names (ARCH/seed-K for reproduce runs), or full paths when names repeat."""
    names = [f"{p.resolve().parent.name}/{p.resolve().name}" if p.resolve().name.startswith("seed-")
             else p.resolve().name for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def run(args: argparse.Namespace) -> int:
    """Draw the curves to a PNG (or any format matplotlib knows from the suffix)."""
    from budgetnet.train.figures import plot_curves
    from budgetnet.train.rundir import read_metrics

    paths = [Path(r) for r in args.runs]
    out = Path(args.out) if args.out else (paths[0] / "curves.png" if len(paths) == 1 else Path("curves.png"))
    check_image_out(out)
    runs = []
    for label, path in zip(run_labels(paths), paths):
        metrics = read_metrics(path)
        if not metrics:
            raise BudgetnetError(f"{path}: metrics.jsonl has no finished epoch yet")
        runs.append((label, metrics))
    plot_curves(runs, out)
    print(f"wrote {out}")
    return 0
