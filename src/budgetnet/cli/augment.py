"""`budgetnet augment`: build (or reuse) the paper's 300k-sample offline augmentation store."""

from __future__ import annotations

import argparse
from pathlib import Path

from budgetnet.cli.argtypes import nonneg_int, positive_int
from budgetnet.cli.sources import FORMATS, add_source_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `augment` verb."""
    parser = subparsers.add_parser(
        "augment", help="build the offline augmentation store (50k originals + 5 augmented copies)",
        description=f"{__doc__} Formats: {FORMATS}.")
    parser.add_argument("--data", required=True, metavar="PATH", help="dataset file or folder")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="store folder (default: the cache, keyed by data fingerprint, seed and subset)")
    parser.add_argument("--seed", type=nonneg_int, default=0, help="seed of every random parameter (default 0)")
    parser.add_argument("--subset", type=positive_int, default=None, metavar="N", help="use the first N training images")
    parser.add_argument("--device", default="cpu", help="torch device doing the work, e.g. cpu or cuda (default cpu)")
    parser.add_argument("--show", type=Path, default=None, metavar="PNG",
                        help="only draw the example grid (the paper's Figures 1-6) to this PNG; no store is built")
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build or reuse the store (or draw the figure) and say where it is."""
    from budgetnet.data import load_cifar, load_or_build_store
    from budgetnet.outputs import check_dir_out, check_file_out
    from budgetnet.train.session import pick_device

    if args.show is not None:
        check_file_out(args.show, ("png",))
    if args.out is not None:
        check_dir_out(args.out)
    device = pick_device(args.device)
    data = load_cifar(args.data, cache_dir=args.cache_dir, download=args.download)
    if args.show is not None:
        from budgetnet.data.figure import augmentation_grid

        augmentation_grid(data, args.show, seed=args.seed)
        print(f"wrote {args.show}")
        return 0
    store = load_or_build_store(data, out_dir=args.out, seed=args.seed, subset=args.subset, device=device,
                                cache_dir=args.cache_dir)
    path = Path(store.images.filename).parent
    counts = store.manifest["counts"]
    print(f"store: {path}  ({counts['total']} images = {counts['originals']} x {counts['copies']}, seed {args.seed})")
    print("mean RGB " + " ".join(f"{m:.4f}" for m in store.manifest["mean"])
          + "   std RGB " + " ".join(f"{s:.4f}" for s in store.manifest["std"]))
    return 0
