"""What `budgetnet arch list|show` report about an architecture: its one-row summary and its per-stage,
per-layer breakdown of parameters and MACs, JSON-ready."""

from __future__ import annotations

from typing import Any

from budgetnet.counts import count_macs, count_params, layer_counts
from budgetnet.presets import PRESETS
from budgetnet.spec import ResNetSpec


def summary(name: str, spec: ResNetSpec, budget: int) -> dict[str, Any]:
    """The one-row description of an architecture used by `arch list`."""
    params = count_params(spec)
    return {
        "name": name,
        "stages": len(spec.stages),
        "blocks": list(spec.depths),
        "widths": list(spec.widths),
        "kernels": [spec.stem_kernel, spec.conv1_kernel, spec.conv2_kernel],
        "skip_kernel": spec.skip_kernel,
        "stem": spec.stem,
        "downsample": [s.downsample for s in spec.stages],
        "params": params,
        "macs": count_macs(spec),
        "within_budget": params <= budget,
    }


def preset_summaries(budget: int) -> list[dict[str, Any]]:
    """The summary of every preset, in the presets' order."""
    return [summary(name, preset.spec, budget) for name, preset in PRESETS.items()]


def breakdown(name: str, spec: ResNetSpec, budget: int) -> dict[str, Any]:
    """Per-stage and per-layer counts of one architecture, JSON-ready."""
    layers = layer_counts(spec)
    groups: dict[str, dict[str, int]] = {}
    for layer in layers:
        group = "stem" if layer.name.startswith("stem") else "head" if layer.stage is None else f"stage {layer.stage + 1}"
        g = groups.setdefault(group, {"params": 0, "macs": 0})
        g["params"] += layer.params
        g["macs"] += layer.macs
    return {
        **summary(name, spec, budget),
        "budget": budget,
        "spec": spec.to_dict(),
        "groups": [{"name": k, **v} for k, v in groups.items()],
        "layers": [
            {"name": l.name, "kind": l.kind, "params": l.params, "macs": l.macs, "out_shape": list(l.out_shape)}
            for l in layers
        ],
    }
