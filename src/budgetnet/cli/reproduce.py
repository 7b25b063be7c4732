"""`budgetnet reproduce`: train the six approach presets with one recipe (the paper's by default), rebuild Table 1."""

from __future__ import annotations

import argparse
import shlex
import sys

from budgetnet.cli.argtypes import positive_int
from budgetnet.cli.interrupts import SigintToStop
from budgetnet.cli.main import INTERRUPTED
from budgetnet.presets import PAPER_APPROACHES
from budgetnet.train.recipe import PRECISIONS, RECIPES


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `reproduce` to the CLI."""
    p = verbs.add_parser("reproduce", help="train the paper's approaches and write Table 1 (results.md/.csv)",
                         description="Trains every approach preset with one recipe (the paper's by default), one run "
                                     "per seed, and writes results.md, results.csv and accuracy_vs_params.png. "
                                     "Re-running the same command skips finished runs and resumes interrupted ones. "
                                     "With the paper recipe and --epochs below 50 its milestones 15,25,35,45 are "
                                     "scaled proportionally.")
    p.add_argument("--recipe", default="paper", choices=sorted(RECIPES),
                   help="named recipe every approach trains with (default paper)")
    p.add_argument("--data", required=True, help="CIFAR-10 (any layout budgetnet train accepts)")
    p.add_argument("--seeds", type=positive_int, default=1, help="runs per architecture, seeds 0..K-1 (default 1)")
    p.add_argument("--epochs", type=positive_int, help="epochs per run (default 50; fewer = scaled down)")
    p.add_argument("--subset", type=positive_int, help="train on the first N training images (scaled down)")
    p.add_argument("--archs", nargs="+", default=list(PAPER_APPROACHES), metavar="ARCH",
                   help=f"presets to train (default: {' '.join(PAPER_APPROACHES)})")
    p.add_argument("--out", default="reproduce", help="output directory (default ./reproduce)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default): bf16 autocast where the hardware runs it natively, else fp32; or fp32, bf16")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 into --data if it is not there")
    p.add_argument("--quiet", action="store_true", help="no progress bars: one plain line per epoch")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train what is missing, then write the results; 130 after Ctrl-C (re-run to continue)."""
    from budgetnet.counts import check_budget
    from budgetnet.data import load_cifar
    from budgetnet.outputs import check_dir_out
    from budgetnet.presets import get_preset
    from budgetnet.train.loop import Interrupted, StopRequest, TrainingDiverged
    from budgetnet.train.precision import choose_precision
    from budgetnet.train.reproduce import named_recipe, plan, write_results
    from budgetnet.train.session import RunOptions, describe, new_run, pick_device, resume_run

    for arch in args.archs:
        check_budget(get_preset(arch).spec, name=arch)
    recipe = named_recipe(args.recipe, args.epochs, args.subset, precision=args.precision)
    # resolved once here, as every run records it, so that a re-run finds its runs' recipes equal
    recipe = recipe.replace(precision=choose_precision(recipe.precision, pick_device(args.device))[0])
    out = check_dir_out(args.out)
    runs = plan(args.archs, args.seeds, recipe, out)
    states = [r.state() for r in runs]
    data = load_cifar(args.data, download=args.download)
    stop = StopRequest()
    options = RunOptions(device=args.device, quiet=args.quiet, stop=stop)
    command = "budgetnet " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else "budgetnet reproduce ..."
    try:
        with SigintToStop(stop):
            for i, (planned, state) in enumerate(zip(runs, states), 1):
                label = f"[{i}/{len(runs)}] {planned.arch} seed {planned.seed}"
                if state == "done":
                    print(f"{label}: finished earlier, skipped")
                    continue
                print(f"{label}: {'resuming' if state == 'partial' else 'training'}", flush=True)
                if state == "partial":
                    outcome = resume_run(planned.path, data, options)
                else:
                    outcome = new_run(planned.arch, planned.recipe, data, planned.path, options=options)
                print(f"{label}: {describe(outcome)}", flush=True)
    except Interrupted:
        print(f"budgetnet: interrupted; the current run's checkpoint is saved. Re-run the same command to "
              f"continue: finished runs are skipped", file=sys.stderr)
        return INTERRUPTED
    except TrainingDiverged as e:
        print(f"budgetnet: error: {planned.arch} seed {planned.seed}: {e}; its last good checkpoint is kept in "
              f"{planned.path}", file=sys.stderr)
        return 1
    rows, note = write_results(out, runs, recipe, command)
    print(note)
    for row in rows:
        std = "" if row["test_acc_std"] is None else f" ± {row['test_acc_std']:.2f}"
        paper = "-" if row["paper_acc"] is None else f"{row['paper_acc']:.2f}%"
        print(f"  {row['arch']:12s} {row['params']:>10,} params  {row['test_acc_mean']:.2f}%{std}  (paper {paper})")
    print(f"wrote {out / 'results.md'}, {out / 'results.csv'} and {out / 'accuracy_vs_params.png'}")
    return 0
