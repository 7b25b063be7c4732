"""`budgetnet train`: train a preset or JSON spec under the budget with a named recipe, or resume a run."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from budgetnet.cli.argtypes import epoch_list, nonneg_float, nonneg_int, positive_int
from budgetnet.cli.interrupts import SigintToStop
from budgetnet.cli.main import INTERRUPTED
from budgetnet.counts import DEFAULT_BUDGET
from budgetnet.errors import BudgetnetError
from budgetnet.train.recipe import AUGMENT_MODES, PRECISIONS, RECIPE_ARCHS, RECIPES, SCHEDULES

DIVERGED = 1  # exit code when the loss became NaN/inf: not a usage error, the run itself failed
# flags that change what is computed: a resumed run keeps its recorded values
RECIPE_FLAGS = ("epochs", "lr", "milestones", "gamma", "batch_size", "weight_decay", "momentum", "warmup_epochs",
                "label_smoothing", "augment", "seed", "subset", "val_split", "precision", "schedule", "nesterov",
                "ema_decay", "tta", "eval_every")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """The recipe's fields as flags; each defaults to None, meaning the named recipe's value."""
    g = parser.add_argument_group("recipe (defaults: the --recipe's values)")
    g.add_argument("--recipe", default="paper", choices=sorted(RECIPES), help="named recipe to start from (default paper)")
    g.add_argument("--epochs", type=positive_int, help="passes over the training rows (paper: 50)")
    g.add_argument("--lr", type=nonneg_float, help="initial learning rate (paper: 0.1)")
    g.add_argument("--milestones", type=epoch_list, help="epochs where lr is multiplied by --gamma, e.g. 15,25,35,45")
    g.add_argument("--gamma", type=nonneg_float, help="lr multiplier at each milestone (paper: 0.1)")
    g.add_argument("--batch-size", type=positive_int, help="images per SGD step (paper: 32)")
    g.add_argument("--weight-decay", type=nonneg_float, help="SGD weight decay (paper: 1e-4)")
    g.add_argument("--momentum", type=nonneg_float, help="SGD momentum (paper: 0.9)")
    g.add_argument("--warmup-epochs", type=nonneg_float, help="linear lr warm-up, in epochs (paper: 0)")
    g.add_argument("--label-smoothing", type=nonneg_float, help="cross-entropy label smoothing (paper: 0)")
    g.add_argument("--augment", choices=AUGMENT_MODES,
                   help="offline: the 300k store (paper); online: flip+crop; shift: alternating flips, 2 px shifts; none")
    g.add_argument("--seed", type=nonneg_int, help="seed for init, epoch order and online augmentation (default 0)")
    g.add_argument("--subset", type=positive_int, help="train on the first N training images only")
    g.add_argument("--val-split", type=nonneg_int, help="hold out N training images (with their augmented copies)")
    g.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default): bf16 autocast where the hardware runs it natively, else fp32; or fp32, bf16")
    g.add_argument("--schedule", choices=SCHEDULES, help="multistep (paper), or cosine or linear (to 0, after warm-up)")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov momentum (paper: off)")
    g.add_argument("--ema-decay", type=nonneg_float, help="per-step weight EMA decay, 0 = off (paper: 0)")
    g.add_argument("--tta", action=argparse.BooleanOptionalAction, help="report accuracy with flip TTA (paper: off)")
    g.add_argument("--eval-every", type=positive_int, metavar="N",
                   help="test (and val) pass after every N-th epoch and the last (paper: 1)")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that decide how a run executes, not what it computes."""
    parser.add_argument("--download", action="store_true", help="download CIFAR-10 into --data if it is not there")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms (slower on GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars: one plain line per epoch")
    parser.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                        help="torch.compile the model; MODE reduce-overhead adds CUDA graphs (default mode: default)")


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `train` to the CLI."""
    p = verbs.add_parser("train", help="train an architecture with the paper's recipe (or resume a run)",
                         description="Train a preset or JSON spec under the parameter budget. The reported "
                                     "result is the final epoch's test accuracy; nothing is selected on the test set.")
    defaults = ", ".join(f"{a} for --recipe {r}" for r, a in RECIPE_ARCHS.items())
    p.add_argument("--arch", help=f"preset name or spec .json (default: the recipe's own, {defaults})")
    p.add_argument("--data", help="CIFAR-10: the official binary/python folder or archive, or an image-folder tree")
    p.add_argument("--out", help="run directory (default runs/ARCH-sSEED-TIME)")
    p.add_argument("--budget", type=positive_int, default=DEFAULT_BUDGET, help="parameter budget (default 5,000,000)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    add_recipe_flags(p)
    add_run_flags(p)
    p.set_defaults(run=run)


def resolve_recipe(args: argparse.Namespace) -> "Recipe":  # noqa: F821
    """The named recipe with every given flag applied."""
    from budgetnet.train.recipe import get_recipe

    return get_recipe(args.recipe).replace(**{f: getattr(args, f) for f in RECIPE_FLAGS})


def run(args: argparse.Namespace) -> int:
    """Start or resume a run; 130 after Ctrl-C (checkpoint saved), 1 if the loss diverged."""
    import torch

    from budgetnet.rundir import RunDir
    from budgetnet.train.distributed import from_environment, shutdown
    from budgetnet.train.loop import Interrupted, StopRequest, TrainingDiverged
    from budgetnet.train.session import RunOptions, describe, new_run, resume_run

    if args.resume:
        given = [f"--{f.replace('_', '-')}" for f in ("arch", "out", *RECIPE_FLAGS) if getattr(args, f) is not None]
        if given or args.recipe != "paper" or args.budget != DEFAULT_BUDGET:
            raise BudgetnetError(f"--resume continues a run with its recorded recipe; drop {', '.join(given) or '--recipe/--budget'}")
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    stop = StopRequest()
    options = RunOptions(device=args.device, deterministic=args.deterministic, quiet=args.quiet,
                         download=args.download, stop=stop, compile=args.compile)
    run_dir = Path(args.resume) if args.resume else None
    dist = from_environment()  # under torchrun: this rank; rank 0 alone reports
    try:
        with SigintToStop(stop):
            if args.resume:
                outcome = resume_run(args.resume, args.data, options)
            else:
                recipe = resolve_recipe(args)
                arch = args.arch or RECIPE_ARCHS[args.recipe]
                if dist.enabled and not args.out:
                    raise BudgetnetError("under torchrun pass --out RUN_DIR, so that every rank names the same run")
                run_dir = Path(args.out) if args.out else default_run_dir(arch, recipe.seed)
                outcome = new_run(arch, recipe, args.data, run_dir, args.budget, options)
    except Interrupted as e:
        if not dist.is_main:
            return INTERRUPTED
        where = f"epoch {e.epoch + 1}" + (f", step {e.progress.step}" if e.progress else " (start)")
        print(f"budgetnet: interrupted in {where}; checkpoint saved to {RunDir(run_dir).checkpoint}\n"
              f"resume with: budgetnet train --resume {run_dir}", file=sys.stderr)
        return INTERRUPTED
    except TrainingDiverged as e:
        if not dist.is_main:
            return DIVERGED
        run = RunDir(run_dir)
        kept = (f"the last good checkpoint ({run.checkpoint}) is kept" if run.has_checkpoint()
                else "no epoch finished, so no checkpoint was saved")
        print(f"budgetnet: error: {e}; {kept}. Try a lower --lr.", file=sys.stderr)
        return DIVERGED
    finally:
        shutdown(dist)
    if dist.is_main:
        print(describe(outcome))
    return 0


def default_run_dir(arch: str, seed: int) -> Path:
    """runs/ARCH-sSEED-YYYYmmdd-HHMMSS, so runs never overwrite each other."""
    return Path("runs") / f"{Path(arch).stem}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
