"""`budgetnet arch list|show`: the presets and any spec, with parameter and MAC counts."""

from __future__ import annotations

import argparse
import json

from budgetnet.archinfo import breakdown, preset_summaries
from budgetnet.cli.argtypes import positive_int
from budgetnet.counts import DEFAULT_BUDGET
from budgetnet.presets import resolve_spec


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `arch list` and `arch show` to the CLI."""
    arch = verbs.add_parser("arch", help="list the presets or show one architecture's breakdown")
    sub = arch.add_subparsers(dest="arch_verb", metavar="{list,show}", parser_class=type(arch))
    sub.required = True

    listing = sub.add_parser("list", help="a table of every preset with params, MACs and budget check")
    listing.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    listing.add_argument("--budget", type=positive_int, default=DEFAULT_BUDGET, help="parameter budget (default 5,000,000)")
    listing.set_defaults(run=run_list)

    show = sub.add_parser("show", help="per-stage and per-layer params and MACs of a preset or JSON spec")
    show.add_argument("arch", metavar="NAME_OR_JSON", help="a preset name or a path to a spec .json")
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    show.add_argument("--plot", metavar="OUT.png", help="draw the architecture (the paper's Figure 9) to a PNG")
    show.add_argument("--budget", type=positive_int, default=DEFAULT_BUDGET, help="parameter budget (default 5,000,000)")
    show.set_defaults(run=run_show)


def _dash(values: list[int]) -> str:
    return "-".join(str(v) for v in values)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned text columns, numbers right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if str(c).replace(",", "").isdigit() else str(c).ljust(w) for c, w in zip(cells, widths)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def run_list(args: argparse.Namespace) -> int:
    """Print every preset as a table or JSON."""
    rows = preset_summaries(args.budget)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ["name", "stages", "blocks", "widths", "kernels", "skip", "params", "MACs", "within budget"]
    table = [
        [
            r["name"],
            str(r["stages"]),
            _dash(r["blocks"]),
            _dash(r["widths"]),
            "stem {}{}, conv {}/{}".format(r["kernels"][0], " whiten" if r["stem"] == "whiten" else "",
                                           *r["kernels"][1:]) + (" pool" if "pool" in r["downsample"] else ""),
            f"{r['skip_kernel']}x{r['skip_kernel']}",
            f"{r['params']:,}",
            f"{r['macs'] / 1e6:,.1f}M",
            "yes" if r["within_budget"] else "no",
        ]
        for r in rows
    ]
    print(format_table(header, table))
    print(f"\nbudget: {args.budget:,} trainable parameters; MACs for one 32x32 image, convs and linear only")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one architecture's breakdown, and optionally draw it."""
    name, spec = resolve_spec(args.arch)
    info = breakdown(name, spec, args.budget)
    if args.plot:
        from budgetnet.archplot import plot_architecture
        from budgetnet.outputs import check_image_out

        check_image_out(args.plot)
        plot_architecture(spec, name, args.plot)
    if args.json:
        print(json.dumps([info], indent=2))
        return 0
    status = "within" if info["within_budget"] else "OVER"
    print(f"{name}: {info['params']:,} params ({status} the {args.budget:,} budget), {info['macs']:,} MACs per 32x32 image")
    whiten = " whitening (frozen, set from the training images)" if spec.stem == "whiten" else ""
    pooled = [str(i + 1) for i, s in enumerate(spec.stages) if s.downsample == "pool"]
    pooling = f"; stage {', '.join(pooled)} downsample by pooling" if pooled else ""
    print(
        f"stem {spec.stem_width}ch {spec.stem_kernel}x{spec.stem_kernel}{whiten}{pooling}; block convs "
        f"{spec.conv1_kernel}x{spec.conv1_kernel} then {spec.conv2_kernel}x{spec.conv2_kernel}; "
        f"skip {spec.skip_kernel}x{spec.skip_kernel}; {spec.activation}; global {spec.head_pool} pool"
        f"{f'; logits x {spec.logit_scale:g}' if spec.logit_scale != 1.0 else ''}\n"
    )
    print(format_table(["part", "params", "MACs"], [[g["name"], f"{g['params']:,}", f"{g['macs']:,}"] for g in info["groups"]]))
    print()
    layer_rows = [
        [l["name"], l["kind"], "x".join(map(str, l["out_shape"])), f"{l['params']:,}", f"{l['macs']:,}"]
        for l in info["layers"]
    ]
    print(format_table(["layer", "kind", "output", "params", "MACs"], layer_rows))
    if args.plot:
        print(f"\nwrote {args.plot}")
    return 0
