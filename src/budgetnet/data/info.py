"""What `budgetnet data info` reports about a dataset: layout, sizes, class balance, statistics, checksums."""

from __future__ import annotations

import numpy as np

from budgetnet.data.dataset import CifarData
from budgetnet.data.normalize import channel_stats


def _split(images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> dict:
    mean, std = channel_stats(images)
    counts = np.bincount(labels, minlength=len(classes))
    return {"count": int(len(images)), "per_class": dict(zip(classes, counts.tolist())), "mean": mean, "std": std}


def dataset_info(data: CifarData) -> dict:
    """A JSON-ready summary: the source record plus, per split, counts, per-class counts and channel mean/std."""
    return {
        "source": data.source,
        "classes": list(data.classes),
        "train": _split(data.train_images, data.train_labels, data.classes),
        "test": _split(data.test_images, data.test_labels, data.classes),
    }


def format_info(info: dict) -> str:
    """The human-readable form of dataset_info."""
    src = info["source"]
    checks = src["checksums"]
    if src.get("checksum_mismatches"):
        checks += " (differ from the published MD5: " + ", ".join(src["checksum_mismatches"]) + ")"
    lines = [
        f"source:    {src['path']}",
        f"format:    {src['format']}{' (lossy JPEG)' if src.get('lossy') else ''}",
        f"checksums: {checks}",
        f"content:   sha256 {src['fingerprint'][:16]}",
        f"classes:   {len(info['classes'])}",
    ]
    for split in ("train", "test"):
        s = info[split]
        fmt = lambda v: " ".join(f"{x:.4f}" for x in v)  # noqa: E731
        lines += [f"{split}: {s['count']} images   mean RGB {fmt(s['mean'])}   std RGB {fmt(s['std'])}"]
        lines += [f"  {name:<12} {count}" for name, count in s["per_class"].items()]
    return "\n".join(lines)
