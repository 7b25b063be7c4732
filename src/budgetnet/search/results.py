"""What a search directory holds besides the study: trials.csv, the leaderboard, pareto.png, best.json."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from budgetnet.fsutil import atomic_write_text
from budgetnet.presets import PAPER_APPROACHES
from budgetnet.search.runner import REFERENCE_PREFIX
from budgetnet.search.space import describe
from budgetnet.spec import ResNetSpec

CSV_FIELDS = ("number", "state", "val_acc", "params", "macs", "latency_ms", "seconds", "worker", "shape", "spec")


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One row per trained trial (rejected shapes left out), in trial order."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if "rejected" in attrs or "spec" not in attrs:
            continue
        per_epoch = attrs.get("val_acc_per_epoch") or []
        state = "diverged" if "diverged" in attrs else "interrupted" if "interrupted" in attrs else t.state.name.lower()
        spec = ResNetSpec.from_dict(attrs["spec"])
        rows.append({"number": t.number, "state": state, "val_acc": per_epoch[-1] if per_epoch else None,
                     "params": attrs["params"], "macs": attrs["macs"], "latency_ms": attrs.get("latency_ms"),
                     "seconds": attrs.get("seconds"), "worker": attrs.get("worker"), "shape": describe(spec),
                     "spec": json.dumps(attrs["spec"], separators=(",", ":"))})
    return rows


def rejected_count(study: Any) -> int:
    """Drawn shapes that fit no width under the limits (never trained)."""
    return sum("rejected" in t.user_attrs for t in study.get_trials(deepcopy=False))


def reference_rows(study: Any) -> list[dict[str, Any]]:
    """The scaled presets' records, in the paper's order."""
    found = {k[len(REFERENCE_PREFIX):]: v for k, v in study.user_attrs.items() if k.startswith(REFERENCE_PREFIX)}
    order = {name: i for i, name in enumerate(PAPER_APPROACHES)}
    return [found[name] for name in sorted(found, key=lambda n: order.get(n, len(order)))]


def pareto_numbers(rows: list[dict[str, Any]], second: str | None) -> set[int]:
    """Trial numbers no other complete trial beats on accuracy and on `second` (or MACs) at once.

    A search under a parameter budget alone still has a front: the cheapest network at each accuracy.
    """
    key = second or "macs"
    done = [r for r in rows if r["state"] == "complete"]
    front = set()
    for r in done:
        beaten = any(o["val_acc"] >= r["val_acc"] and o[key] <= r[key] and (o["val_acc"] > r["val_acc"] or o[key] < r[key])
                     for o in done)
        if not beaten:
            front.add(r["number"])
    return front


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The complete trial with the highest proxy accuracy (the lowest number among ties)."""
    done = [r for r in rows if r["state"] == "complete"]
    return max(done, key=lambda r: (r["val_acc"], -r["number"])) if done else None


def leaderboard(study: Any, second: str | None, top: int = 10) -> dict[str, Any]:
    """The JSON form of `search show`: best trials, the Pareto front, the references and the counts."""
    rows = trial_rows(study)
    front = pareto_numbers(rows, second)
    done = sorted((r for r in rows if r["state"] == "complete"), key=lambda r: (-r["val_acc"], r["number"]))
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    return {"study": study.study_name, "trials": len(rows), "states": states, "rejected": rejected_count(study),
            "objective": ["val_acc"] + ([second] if second else []),
            "best": [{**r, "pareto": r["number"] in front} for r in done[:top]],
            "pareto": [r for r in done if r["number"] in front],
            "references": reference_rows(study)}


def format_leaderboard(board: dict[str, Any]) -> str:
    """The leaderboard as aligned text."""
    states = ", ".join(f"{n} {s}" for s, n in sorted(board["states"].items()))
    lines = [f"study {board['study']}: {board['trials']} trials ({states or 'none yet'}), "
             f"{board['rejected']} drawn shapes rejected untrained"]
    lines.append(f"{'trial':>5}  {'val acc':>7}  {'params':>9}  {'MACs':>7}  front  shape")
    for r in board["best"]:
        lines.append(f"{r['number']:>5}  {100 * r['val_acc']:>6.2f}%  {r['params']:>9,}  {r['macs'] / 1e6:>6.1f}M  "
                     f"{'  *  ' if r['pareto'] else '     '}  {r['shape']}")
    for ref in board["references"]:
        if "skipped" in ref:
            lines.append(f"{'ref':>5}  {'-':>7}  {'-':>9}  {'-':>7}         {ref['name']}: {ref['skipped']}")
            continue
        acc = f"{100 * ref['val_acc']:>6.2f}%" if ref.get("val_acc") is not None else f"{'n/a':>7}"
        lines.append(f"{'ref':>5}  {acc}  {ref['params']:>9,}  {ref['macs'] / 1e6:>6.1f}M         "
                     f"{ref['name']} scaled: {describe(ResNetSpec.from_dict(ref['spec']))}")
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """trials.csv, written atomically so a reader never sees half a file."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r[k] is None else r[k]) for k in CSV_FIELDS})
    atomic_write_text(path, buffer.getvalue())


def write_pareto_plot(board: dict[str, Any], rows: list[dict[str, Any]], second: str | None, path: Path) -> None:
    """Proxy accuracy against MACs (or latency), the front joined, the scaled presets marked."""
    from budgetnet.train.figures import pyplot, save_figure

    plt = pyplot()
    key = second or "macs"
    label = {"params": "parameters", "macs": "MACs per 32x32 image", "latency_ms": "latency (ms per batch)"}[key]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    done = [r for r in rows if r["state"] == "complete"]
    ax.scatter([r[key] for r in done], [100 * r["val_acc"] for r in done], s=14, color="0.6", label="trials")
    front = sorted(board["pareto"], key=lambda r: r[key])
    ax.plot([r[key] for r in front], [100 * r["val_acc"] for r in front], "o-", color="tab:blue", label="Pareto front")
    for ref in board["references"]:
        if ref.get("val_acc") is None or key not in ref:
            continue
        ax.scatter([ref[key]], [100 * ref["val_acc"]], marker="*", s=90, color="tab:red")
        ax.annotate(ref["name"], (ref[key], 100 * ref["val_acc"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.scatter([], [], marker="*", s=90, color="tab:red", label="paper presets, widths scaled to the limits")
    if key == "macs":
        ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1e6:g}M")
    ax.set_xlabel(label)
    ax.set_ylabel("proxy validation accuracy (%)")
    ax.set_title(f"search {board['study']}: {len(done)} complete trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    save_figure(fig, path)


def write_all(study: Any, out: Path, second: str | None) -> dict[str, Any]:
    """Refresh trials.csv, pareto.png, best.json and references/*.json; returns the leaderboard."""
    rows = trial_rows(study)
    board = leaderboard(study, second)
    write_csv(rows, out / "trials.csv")
    best = best_row(rows)
    if best is not None:
        atomic_write_text(out / "best.json", ResNetSpec.from_dict(json.loads(best["spec"])).to_json() + "\n")
    (out / "references").mkdir(exist_ok=True)
    for ref in board["references"]:
        if "spec" in ref:
            atomic_write_text(out / "references" / f"{ref['name']}.json",
                              ResNetSpec.from_dict(ref["spec"]).to_json() + "\n")
    if rows or board["references"]:
        write_pareto_plot(board, rows, second, out / "pareto.png")
    return board
