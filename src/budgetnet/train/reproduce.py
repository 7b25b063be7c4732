"""Table 1 reproduced: one run per (approach, seed) under OUT/ARCH/seed-K, then results.md/.csv and a plot."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgetnet.counts import count_macs, count_params
from budgetnet.errors import BudgetnetError
from budgetnet.fsutil import atomic_write_text
from budgetnet.presets import get_preset
from budgetnet.rundir import RunDir
from budgetnet.train.recipe import PAPER_EPOCHS, Recipe, get_recipe


def named_recipe(name: str, epochs: int | None = None, subset: int | None = None, **changes: Any) -> Recipe:
    """The named recipe with `epochs`: its milestones, warm-up and low-res epochs move proportionally."""
    recipe = get_recipe(name)
    if epochs is not None:
        recipe = recipe.with_epochs(epochs)
    return recipe.replace(subset=subset, **changes)


def paper_recipe(epochs: int | None = None, subset: int | None = None, **changes: Any) -> Recipe:
    """The paper's recipe; with fewer epochs its milestones move proportionally (15/50 of the way, ...)."""
    return named_recipe("paper", epochs, subset, **changes)


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the reproduction."""

    arch: str
    seed: int
    recipe: Recipe
    path: Path

    def state(self) -> str:
        """"done", "partial" (resume it) or "new"; refuses a directory trained with another recipe."""
        run = RunDir(self.path)
        if not run.has_checkpoint():
            run.check_new()  # refuses a folder of someone else's files now, not after the runs before it
            return "new"
        if run.read_recipe() != self.recipe:
            raise BudgetnetError(f"{self.path} was trained with a different recipe; pick another --out "
                                 f"or delete it")
        done = run.read_metrics()
        return "done" if done and done[-1]["epoch"] >= self.recipe.epochs else "partial"


def plan(archs: Sequence[str], seeds: int, recipe: Recipe, out: Path) -> list[PlannedRun]:
    """Every (arch, seed) run, seed-major so a partial reproduction already covers every arch once."""
    return [PlannedRun(a, s, recipe.replace(seed=s), out / a / f"seed-{s}") for s in range(seeds) for a in archs]


def summarise(runs: Sequence[PlannedRun]) -> list[dict[str, Any]]:
    """One row per arch: params, MACs, final-epoch test accuracy mean and std over seeds, the paper's figure."""
    rows = []
    for arch in dict.fromkeys(r.arch for r in runs):
        preset = get_preset(arch)
        histories = [RunDir(r.path).read_metrics() for r in runs if r.arch == arch]
        finals = [100 * h[-1]["test_acc"] for h in histories]
        minutes = [sum(m["seconds"] for m in h) / 60 for h in histories]  # training and its test passes
        rows.append({
            "arch": arch,
            "params": count_params(preset.spec),
            "macs": count_macs(preset.spec),
            "seeds": len(finals),
            "test_acc_mean": statistics.fmean(finals),
            "test_acc_std": statistics.stdev(finals) if len(finals) > 1 else None,
            "paper_acc": preset.paper_accuracy,
            "minutes": statistics.fmean(minutes),
        })
    return rows


def results_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV (accuracies in percent, std empty with one seed)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.2f}" if isinstance(v, float) else ("" if v is None else v)) for k, v in row.items()})
    return buf.getvalue()


def _acc(row: dict[str, Any]) -> str:
    std = row["test_acc_std"]
    return f"{row['test_acc_mean']:.2f}" + (f" ± {std:.2f}" if std is not None else " (1 seed)")


def scale_note(recipe: Recipe, samples_per_epoch: int) -> str:
    """One sentence saying whether and how this reproduction is smaller than the paper's."""
    reasons = recipe.scaled_down_reasons(samples_per_epoch)
    paper = recipe.name == "paper"
    if paper and not reasons:
        return "Full regimen: the paper's recipe, 50 epochs over the 300k-sample offline store."
    head = "SCALED DOWN" if paper else f"NOT THE PAPER'S 50-EPOCH REGIMEN (the {recipe.name} recipe)"
    scaled = paper and recipe.epochs != PAPER_EPOCHS
    return (f"{head}, not comparable to the paper's figures: " + "; ".join(reasons)
            + (f" (milestones scaled to {list(recipe.milestones)})" if scaled else "") + ".")


def results_markdown(rows: Sequence[dict[str, Any]], recipe: Recipe, note: str, env: dict[str, Any],
                     command: str) -> str:
    """results.md: the scale note, the table beside the paper's, and how it was produced."""
    lines = [
        "# Table 1, reproduced by budgetnet", "", f"**{note}**", "",
        "Accuracy is the final epoch's test accuracy (no checkpoint or hyperparameter is chosen on the test set), "
        "mean ± sample standard deviation over seeds.", "",
        "| Architecture | Params | MACs | Test accuracy (%) | Paper, Table 1 (%) | Minutes per run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        paper = "-" if r["paper_acc"] is None else f"{r['paper_acc']:.2f}"
        lines.append(f"| {r['arch']} | {r['params']:,} | {r['macs']:,} | {_acc(r)} | {paper} | {r['minutes']:.1f} |")
    recipe_text = ", ".join(f"{k}={v}" for k, v in recipe.to_dict().items() if k != "seed")
    lines += ["", f"Recipe: {recipe_text}. Minutes: training plus its test passes, mean over seeds.",
              "",
              f"Hardware: {env.get('gpu') or env.get('cpu')} ({env.get('device')}); python {env.get('python')}, "
              f"torch {env.get('torch')}, numpy {env.get('numpy')}.", "", f"Command: `{command}`", ""]
    return "\n".join(lines)


def write_results(out: Path, runs: Sequence[PlannedRun], recipe: Recipe, command: str) -> tuple[list[dict], str]:
    """Write results.csv, results.md and accuracy_vs_params.png into `out`; returns the rows and the note."""
    from budgetnet.train.figures import plot_accuracy_vs_params

    rows = summarise(runs)
    first = RunDir(runs[0].path)
    note = scale_note(recipe, first.read_data().train_rows or 0)
    env = first.read_env()
    atomic_write_text(out / "results.csv", results_csv(rows))
    atomic_write_text(out / "results.md", results_markdown(rows, recipe, note, env, command))
    title = "Final test accuracy vs parameters" + ("" if note.startswith("Full") else " (not the paper's regimen)")
    plot_accuracy_vs_params(rows, out / "accuracy_vs_params.png", title)
    return rows, note


class RunDiverged(Exception):
    """One run of the reproduction diverged; its last good checkpoint is kept and the others are untouched."""

    def __init__(self, planned: PlannedRun, cause: Exception) -> None:
        super().__init__(f"{planned.arch} seed {planned.seed}: {cause}; its last good checkpoint is kept in "
                         f"{planned.path}")
        self.planned = planned


@dataclass(frozen=True)
class Reproduction:
    """What `reproduce` wrote: one row per arch, the scale note, and where the results are."""

    rows: list[dict[str, Any]]
    note: str
    out: Path


def reproduce(archs: Sequence[str], seeds: int, recipe: Recipe, data: Any, out: str | Path, command: str,
              options: Any = None, say: Callable[[str], None] = print) -> Reproduction:
    """Train every (arch, seed) run under `out` that is not finished yet, then write results.md/.csv and the plot.

    Budgets and existing run folders are checked before any data is read; finished runs are skipped and
    interrupted ones resumed, so re-running the same call continues. `recipe`'s "auto" precision is
    resolved once here, as each run records it, so that a re-run finds its runs' recipes equal. Progress
    lines go to `say`; Ctrl-C raises Interrupted (the current run's checkpoint is saved), a diverged
    run RunDiverged.
    """
    from budgetnet.counts import check_budget
    from budgetnet.data import load_cifar
    from budgetnet.outputs import check_dir_out
    from budgetnet.train.loop import TrainingDiverged
    from budgetnet.train.precision import choose_precision
    from budgetnet.train.session import RunOptions, describe, new_run, pick_device, resume_run

    options = options or RunOptions()
    for arch in archs:
        check_budget(get_preset(arch).spec, name=arch)
    recipe = recipe.replace(precision=choose_precision(recipe.precision, pick_device(options.device))[0])
    out = check_dir_out(out)
    runs = plan(archs, seeds, recipe, out)
    states = [r.state() for r in runs]
    loaded = load_cifar(data, download=options.download) if isinstance(data, (str, Path)) else data
    for i, (planned, state) in enumerate(zip(runs, states), 1):
        label = f"[{i}/{len(runs)}] {planned.arch} seed {planned.seed}"
        if state == "done":
            say(f"{label}: finished earlier, skipped")
            continue
        say(f"{label}: {'resuming' if state == 'partial' else 'training'}")
        try:
            if state == "partial":
                outcome = resume_run(planned.path, loaded, options)
            else:
                outcome = new_run(planned.arch, planned.recipe, loaded, planned.path, options=options)
        except TrainingDiverged as e:
            raise RunDiverged(planned, e) from None
        say(f"{label}: {describe(outcome)}")
    rows, note = write_results(out, runs, recipe, command)
    return Reproduction(rows, note, out)
