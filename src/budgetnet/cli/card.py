"""`budgetnet card RUN_DIR`: a markdown model card built from the run directory's files."""

from __future__ import annotations

import argparse


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `card` to the CLI."""
    p = verbs.add_parser("card", help="write a markdown model card from a run directory")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    p.add_argument("--out", metavar="FILE", help="output file (default RUN_DIR/MODEL_CARD.md)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the card and say which parts are still missing."""
    from budgetnet.deploy.card import write_card

    out, missing = write_card(args.run_dir, args.out)
    print(f"wrote {out}")
    for line in missing:
        print("missing: " + line)
    return 0
