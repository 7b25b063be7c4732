"""`budgetnet card RUN_DIR`: a markdown model card built from the run directory's files."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `card` to the CLI."""
    p = verbs.add_parser("card", help="write a markdown model card from a run directory")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    p.add_argument("--out", metavar="FILE", help="output file (default RUN_DIR/MODEL_CARD.md)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the card and say which parts are still missing."""
    from budgetnet.deploy.card import build_card
    from budgetnet.errors import BudgetnetError
    from budgetnet.fsutil import atomic_write_text
    from budgetnet.outputs import check_file_out

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise BudgetnetError(f"{run_dir} is not a run directory")
    out = check_file_out(Path(args.out) if args.out else run_dir / "MODEL_CARD.md")
    text = build_card(run_dir, out)
    atomic_write_text(out, text)
    print(f"wrote {out}")
    for line in text.splitlines():
        if "not measured yet" in line or "Not done yet" in line:
            print("missing: " + line.lstrip("- "))
    return 0
