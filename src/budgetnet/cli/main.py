"""Entry point: parse `budgetnet <verb> ...`, run the verb, turn user errors into one line and exit 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from budgetnet import __version__
from budgetnet.errors import BudgetnetError

# each verb lives in budgetnet.cli.<module> and exposes register(subparsers)
VERB_MODULES = (
    "arch",
    "predict",
    "export",
    "quantize",
    "card",
    "data",
    "augment",
    "train",
    "eval",
    "plot",
    "reproduce",
)

OPTIONAL_MODULES = {"onnx": "deploy", "onnxruntime": "deploy", "onnxscript": "deploy"}  # module -> extra
USAGE_ERROR = 2  # exit code for bad flags, values, specs or files
INTERRUPTED = 130  # exit code after Ctrl-C, as shells report SIGINT


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full `budgetnet` parser with every verb registered."""
    parser = OneLineParser(prog="budgetnet", description="Compact ResNets under a hard parameter budget.")
    parser.add_argument("--version", action="version", version=f"budgetnet {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=OneLineParser)
    verbs.required = True
    for name in VERB_MODULES:
        importlib.import_module(f"budgetnet.cli.{name}").register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BudgetnetError as e:
        print(f"budgetnet: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except ModuleNotFoundError as e:
        root = (e.name or "").split(".")[0]
        if root not in OPTIONAL_MODULES:
            raise
        extra = OPTIONAL_MODULES[root]
        print(f"budgetnet: error: this command needs {root}, from the '{extra}' extra: "
              f"pip install 'budgetnet[{extra}]' (or pip install -e '.[{extra}]' in a clone)", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("budgetnet: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        return 0  # output piped into `head` and closed early: not an error


if __name__ == "__main__":
    raise SystemExit(main())
