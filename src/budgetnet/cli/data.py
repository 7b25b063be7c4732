"""`budgetnet data info PATH`: the detected layout, split sizes, class counts, channel statistics, checksums."""

from __future__ import annotations

import argparse
import json

from budgetnet.cli.sources import FORMATS, add_source_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data` and its `info` sub-verb."""
    parser = subparsers.add_parser("data", help="inspect a CIFAR-10 dataset", description=__doc__)
    sub = parser.add_subparsers(dest="data_verb", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    info = sub.add_parser("info", help="summarise a dataset", description=f"Formats: {FORMATS}.")
    info.add_argument("path", metavar="PATH", help="dataset file or folder")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_source_arguments(info)
    info.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Load the dataset and print its summary."""
    from budgetnet.data import load_cifar
    from budgetnet.data.info import dataset_info, format_info

    info = dataset_info(load_cifar(args.path, cache_dir=args.cache_dir, download=args.download))
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0
