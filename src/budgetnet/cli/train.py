"""`budgetnet train`: train a preset or JSON spec under the budget with a named recipe, or resume a run."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from budgetnet.cli.argtypes import positive_int
from budgetnet.cli.interrupts import SigintToStop
from budgetnet.cli.main import INTERRUPTED
from budgetnet.cli.recipe_flags import add_recipe_flags, given_recipe_flags, resolve_recipe
from budgetnet.counts import DEFAULT_BUDGET
from budgetnet.errors import BudgetnetError
from budgetnet.train.recipe import RECIPE_ARCHS

DIVERGED = 1  # exit code when the loss became NaN/inf: not a usage error, the run itself failed
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that decide how a run executes, not what it computes."""
    parser.add_argument("--download", action="store_true", help="download CIFAR-10 into --data if it is not there")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--deterministic", action="store_true", help="torch deterministic algorithms (slower on GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars: one plain line per epoch")
    parser.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES, metavar="MODE",
                        help="torch.compile the model; MODE reduce-overhead adds CUDA graphs (default mode: default)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard events (per-epoch metrics, per-step lr) into RUN/tensorboard; "
                             "needs the tensorboard extra")


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


def run(args: argparse.Namespace) -> int:
    """Start or resume a run; 130 after Ctrl-C (checkpoint saved), 1 if the loss diverged."""
    import torch

    from budgetnet.rundir import RunDir
    from budgetnet.train.distributed import from_environment, shutdown
    from budgetnet.train.loop import Interrupted, StopRequest, TrainingDiverged
    from budgetnet.train.session import RunOptions, describe, new_run, resume_run

    if args.resume:
        given = [f"--{f}" for f in ("arch", "out") if getattr(args, f) is not None] + given_recipe_flags(args)
        if given or args.recipe != "paper" or args.budget != DEFAULT_BUDGET:
            raise BudgetnetError(f"--resume continues a run with its recorded recipe; drop {', '.join(given) or '--recipe/--budget'}")
    if args.tensorboard:
        import torch.utils.tensorboard  # noqa: F401  (without the extra this fails here, before any work)
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    stop = StopRequest()
    options = RunOptions(device=args.device, deterministic=args.deterministic, quiet=args.quiet,
                         download=args.download, stop=stop, compile=args.compile, tensorboard=args.tensorboard)
    run_dir = Path(args.resume) if args.resume else None
    dist = from_environment()  # under torchrun: this rank; rank 0 alone reports
    try:
        with SigintToStop(stop):
            if args.resume:
                outcome = resume_run(args.resume, args.data, options)
            else:
                recipe = resolve_recipe(args)
                switch = cpu_small_instead(args.recipe, bool(args.arch), recipe.precision, args.device)
                if switch:  # noted first, so that an error from the user's flags on cpu-small reads as such
                    if dist.is_main:
                        print(f"note: {switch}", flush=True)
                    args = argparse.Namespace(**{**vars(args), "recipe": "cpu-small"})
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


def cpu_small_instead(recipe: str, arch_given: bool, precision: str, device: str | None,
                      flags: frozenset[str] | None = None) -> str | None:
    """Why --recipe cpu trains the cpu-small recipe instead, where its own network would train in fp32 on a CPU
    without native bf16 (for hours); None elsewhere. `flags` defaults to this CPU's; tests pass their own."""
    from budgetnet.hardware import cpu_flags, native_bf16
    from budgetnet.train.session import pick_device

    if recipe != "cpu" or arch_given or precision == "bf16" or pick_device(device).type != "cpu":
        return None
    if native_bf16(cpu_flags() if flags is None else flags):
        return None
    return ("this CPU has no native bf16, so --recipe cpu trains the cpu-small recipe and its 2.1M-parameter "
            "network: 72-73 minutes on a measured 2-core AVX2-only machine (slower hosts take longer), where resnet-cpu "
            "would train in fp32 for about 6 hours (estimated from a measured 38 images/s); --arch resnet-cpu trains "
            "that anyway (docs/results.md)")


def default_run_dir(arch: str, seed: int) -> Path:
    """runs/ARCH-sSEED-YYYYmmdd-HHMMSS, so runs never overwrite each other."""
    return Path("runs") / f"{Path(arch).stem}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
