"""The dataset options shared by the verbs that read one (`data info`, `augment`): formats, --download, --cache-dir."""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("CIFAR-10 binary or python version (.tar.gz or extracted folder), or ROOT/{train,test}/<class>/*.png|jpg "
           "image folders (directory or .zip)")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """--download and --cache-dir, shared by the verbs that read a dataset."""
    parser.add_argument("--download", action="store_true",
                        help="if PATH does not exist, fetch the official python version into the cache (MD5-checked)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="decoded-data and store cache (default: $BUDGETNET_CACHE or ~/.cache/budgetnet)")
