"""Figures built only from what a run directory holds: curves (the paper's Figure 8), confusion, Table 1 plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from budgetnet.errors import BudgetnetError
from budgetnet.fsutil import atomic_path
from budgetnet.rundir import RunDir


def pyplot():  # noqa: ANN202
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, and no GUI backend probing
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out: str | Path) -> None:
    """Write `fig` to `out` atomically (format from the suffix) and close it."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=Path(out).suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    pyplot().close(fig)


def plot_curves(runs: Sequence[tuple[str, list[dict[str, Any]]]], out: str | Path) -> None:
    """Loss and accuracy against epoch, train solid and test dashed (val dotted), one colour per run."""
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, metrics) in enumerate(runs):
        colour = colours[i % len(colours)]
        for split, style in (("train", "-"), ("test", "--"), ("val", ":")):
            measured = [m for m in metrics if f"{split}_loss" in m]  # a recipe's eval_every skips some epochs
            if measured:
                epochs = [m["epoch"] for m in measured]
                marker = "." if len(measured) < len(metrics) else None
                ax_loss.plot(epochs, [m[f"{split}_loss"] for m in measured], style, marker=marker, color=colour,
                             label=f"{label} {split}")
                ax_acc.plot(epochs, [100 * m[f"{split}_acc"] for m in measured], style, marker=marker, color=colour,
                            label=f"{label} {split}")
    from matplotlib.ticker import MaxNLocator

    for ax, name in ((ax_loss, "cross-entropy loss"), (ax_acc, "accuracy (%)")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_loss.set_title("Loss")
    ax_acc.set_title("Accuracy")
    save_figure(fig, out)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], out: str | Path, title: str) -> None:
    """A confusion matrix with counts in every cell: rows the true class, columns the prediction."""
    plt = pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.75 * n + 0.5))
    ax.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > threshold else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    save_figure(fig, out)


def plot_accuracy_vs_params(rows: Sequence[dict[str, Any]], out: str | Path, title: str) -> None:
    """Our final test accuracy (mean, std error bars) against parameters, with the paper's figure beside it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    params = [r["params"] / 1e6 for r in rows]
    ax.errorbar(params, [r["test_acc_mean"] for r in rows], yerr=[r["test_acc_std"] or 0 for r in rows],
                fmt="o", capsize=4, label="budgetnet (this run)")
    paper = [(p, r["paper_acc"]) for p, r in zip(params, rows) if r["paper_acc"] is not None]
    if paper:
        ax.scatter(*zip(*paper), marker="s", facecolors="none", edgecolors="tab:red", label="paper, Table 1")
    for p, r in zip(params, rows):
        ax.annotate(r["arch"], (p, r["test_acc_mean"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("trainable parameters (millions)")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, out)


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Short labels: the directory names (ARCH/seed-K for reproduce runs), or full paths when names repeat."""
    names = [f"{p.resolve().parent.name}/{p.resolve().name}" if p.resolve().name.startswith("seed-")
             else p.resolve().name for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Draw the curves of one or more runs from their metrics.jsonl into `out` (any format matplotlib writes
    from the suffix); by default one run's own curves.png, or curves.png here for several."""
    from budgetnet.outputs import check_image_out

    runs = [RunDir(Path(r)) for r in run_dirs]
    # several runs overlaid belong to none of them: their figure goes into the current folder
    out = check_image_out(out if out is not None else (runs[0] if len(runs) == 1 else RunDir(Path())).curves_path)
    curves = []
    for label, run in zip(run_labels([r.path for r in runs]), runs):
        metrics = run.read_metrics()
        if not metrics:
            raise BudgetnetError(f"{run.path}: metrics.jsonl has no finished epoch yet")
        curves.append((label, metrics))
    plot_curves(curves, out)
    return out
