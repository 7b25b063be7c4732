"""`budgetnet reproduce`: train the six approach presets with one recipe (the paper's by default), rebuild Table 1."""

from __future__ import annotations

import argparse
import shlex
import sys

from budgetnet.cli.argtypes import positive_int
from budgetnet.cli.interrupts import SigintToStop
from budgetnet.cli.main import INTERRUPTED, RUN_FAILED
from budgetnet.cli.recipe_flags import add_recipe_flags, resolve_recipe
from budgetnet.presets import PAPER_APPROACHES


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `reproduce` to the CLI."""
    p = verbs.add_parser("reproduce", help="train the paper's approaches and write Table 1 (results.md/.csv)",
                         description="Trains every approach preset with one recipe (the paper's by default), one run "
                                     "per seed, and writes results.md, results.csv and accuracy_vs_params.png. "
                                     "Re-running the same command skips finished runs and resumes interrupted ones. "
                                     "With the paper recipe and --epochs below 50 its milestones 15,25,35,45 are "
                                     "scaled proportionally.")
    p.add_argument("--data", required=True, help="CIFAR-10 (any layout budgetnet train accepts)")
    p.add_argument("--seeds", type=positive_int, default=1, help="runs per architecture, seeds 0..K-1 (default 1)")
    p.add_argument("--archs", nargs="+", default=list(PAPER_APPROACHES), metavar="ARCH",
                   help=f"presets to train (default: {' '.join(PAPER_APPROACHES)})")
    p.add_argument("--out", default="reproduce", help="output directory (default ./reproduce)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 into --data if it is not there")
    p.add_argument("--quiet", action="store_true", help="no progress bars: one plain line per epoch")
    # every recipe flag but --seed (--seeds numbers the runs); --epochs moves the schedule along (Recipe.with_epochs)
    add_recipe_flags(p, skip=("seed",))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train what is missing, then write the results; 130 after Ctrl-C (re-run to continue), 1 if a run diverged."""
    from budgetnet.train.loop import Interrupted, StopRequest
    from budgetnet.train.reproduce import RunDiverged, reproduce
    from budgetnet.train.session import RunOptions

    recipe = resolve_recipe(args)
    stop = StopRequest()
    options = RunOptions(device=args.device, quiet=args.quiet, stop=stop, download=args.download)
    command = "budgetnet " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else "budgetnet reproduce ..."
    try:
        with SigintToStop(stop):
            result = reproduce(args.archs, args.seeds, recipe, args.data, args.out, command, options,
                               say=lambda line: print(line, flush=True))
    except Interrupted:
        print("budgetnet: interrupted; the current run's checkpoint is saved. Re-run the same command to "
              "continue: finished runs are skipped", file=sys.stderr)
        return INTERRUPTED
    except RunDiverged as e:
        print(f"budgetnet: error: {e}", file=sys.stderr)
        return RUN_FAILED
    print(result.note)
    for row in result.rows:
        std = "" if row["test_acc_std"] is None else f" ± {row['test_acc_std']:.2f}"
        paper = "-" if row["paper_acc"] is None else f"{row['paper_acc']:.2f}%"
        print(f"  {row['arch']:12s} {row['params']:>10,} params  {row['test_acc_mean']:.2f}%{std}  (paper {paper})")
    out = result.out
    print(f"wrote {out / 'results.md'}, {out / 'results.csv'} and {out / 'accuracy_vs_params.png'}")
    return 0
