"""Draw an architecture as the paper's Figure 9: stem, one column of blocks per stage, head."""

from __future__ import annotations

from pathlib import Path

from budgetnet.counts import count_macs, count_params, layer_counts
from budgetnet.spec import ResNetSpec

STAGE_COLOURS = ("#cfe2f3", "#d9ead3", "#fff2cc", "#f4cccc", "#d9d2e9", "#fce5cd")


def plot_architecture(spec: ResNetSpec, name: str, out: str | Path) -> Path:
    """Render `spec` to a PNG at `out` and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    stage_params: dict[int, int] = {}
    for layer in layer_counts(spec):
        if layer.stage is not None:
            stage_params[layer.stage] = stage_params.get(layer.stage, 0) + layer.params

    rows = max(spec.depths)
    columns = len(spec.stages) + 2  # stem, stages, head
    fig_w, fig_h = 2.4 * columns + 0.5, 1.1 * rows + 2.4
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.set_xlim(0, columns * 2.4)
    ax.set_ylim(-1.6, rows * 1.1 + 0.9)
    ax.axis("off")

    def box(x: float, y: float, text: str, colour: str, h: float = 0.9) -> None:
        ax.add_patch(FancyBboxPatch((x + 0.15, y), 2.0, h, boxstyle="round,pad=0.02", fc=colour, ec="#444444"))
        ax.text(x + 1.15, y + h / 2, text, ha="center", va="center", fontsize=8)

    def arrow(x0: float, x1: float, y: float) -> None:
        ax.add_patch(FancyArrowPatch((x0, y), (x1, y), arrowstyle="->", mutation_scale=12, color="#444444"))

    top = rows * 1.1 - 0.9
    mid = top + 0.45
    k = spec.stem_kernel
    box(0, top, f"input {spec.in_channels}x32x32\n\nstem conv {k}x{k}, {spec.stem_width}\nBN, ReLU", "#eeeeee")
    size, cin = 32, spec.stem_width
    for s, stage in enumerate(spec.stages):
        x = (s + 1) * 2.4
        arrow(x - 0.25, x + 0.15, mid)
        size = (size - 1) // stage.stride + 1
        ax.text(x + 1.15, rows * 1.1 + 0.45, f"stage {s + 1}: {stage.blocks} x {stage.width}ch, {size}x{size}",
                ha="center", va="center", fontsize=9, weight="bold")
        for b in range(stage.blocks):
            stride = stage.stride if b == 0 else 1
            lines = [
                f"conv {spec.conv1_kernel}x{spec.conv1_kernel}, {stage.width}" + (f", /{stride}" if stride > 1 else ""),
                f"conv {spec.conv2_kernel}x{spec.conv2_kernel}, {stage.width}",
            ]
            projection = stride != 1 or cin != stage.width
            lines.append(f"skip conv {spec.skip_kernel}x{spec.skip_kernel}" if projection else "skip: identity")
            box(x, top - b * 1.1, "\n".join(lines), STAGE_COLOURS[s % len(STAGE_COLOURS)])
            cin = stage.width
        ax.text(x + 1.15, top - stage.blocks * 1.1 + 0.75, f"{stage_params[s]:,} params", ha="center", fontsize=7,
                color="#555555")
    x = (len(spec.stages) + 1) * 2.4
    arrow(x - 0.25, x + 0.15, mid)
    box(x, top, f"global avg pool\n\nlinear {cin} -> {spec.num_classes}", "#eeeeee")
    ax.text(
        columns * 1.2,
        -1.2,
        f"{name}: {count_params(spec):,} parameters, {count_macs(spec) / 1e6:,.1f}M MACs per 32x32 image",
        ha="center",
        fontsize=11,
        weight="bold",
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out
