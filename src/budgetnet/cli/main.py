"""Entry point: parse `budgetnet <verb> ...`, run the verb, and turn every expected failure into one line.

The one rule for every input path lives here, not in the verbs: one line on stderr, no traceback,
exit 2 for bad input or usage, 1 for a failure at run time (a full disk, an I/O error), 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import errno
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
    "serve",
    "data",
    "augment",
    "train",
    "eval",
    "plot",
    "reproduce",
    "search",
)

OPTIONAL_MODULES = {"onnx": "deploy", "onnxruntime": "deploy", "onnxscript": "deploy",  # module -> extra
                    "optuna": "search", "sqlalchemy": "search", "gradio": "serve", "gradio_client": "serve",
                    "tensorboard": "tensorboard"}
USAGE_ERROR = 2  # exit code for bad flags, values, specs or files
RUN_FAILED = 1  # exit code when the input was fine but the run could not finish (disk full, I/O error)
INTERRUPTED = 130  # exit code after Ctrl-C, as shells report SIGINT
# errno -> how the line starts; these are the machine failing, not the user's input, so they exit 1
RUN_TIME_ERRNOS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EIO: "I/O error",
                   errno.ENOMEM: "out of memory", errno.EFBIG: "file too large for this file system"}
# the rest name a path the user gave that cannot be used as given, so they exit 2
USAGE_ERRNOS = {errno.EISDIR: "is a directory", errno.ENOTDIR: "a parent is not a directory",
                errno.EEXIST: "already exists", errno.EACCES: "permission denied", errno.EPERM: "not permitted",
                errno.ENOENT: "no such file or directory", errno.EROFS: "read-only file system",
                errno.ENAMETOOLONG: "name too long", errno.ELOOP: "too many symbolic links"}


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


def describe_os_error(e: OSError) -> tuple[str, int]:
    """The one line (after 'budgetnet: error: ') and the exit code for an OSError."""
    where = None if e.filename is None else str(e.filename)
    if where is not None and e.filename2 is not None:
        where += f" -> {e.filename2}"
    if e.errno in RUN_TIME_ERRNOS:
        what = RUN_TIME_ERRNOS[e.errno]
        return (f"{what}: {where}" if where else what), RUN_FAILED
    what = USAGE_ERRNOS.get(e.errno) or e.strerror or type(e).__name__
    return (f"{where}: {what}" if where else what), USAGE_ERROR if e.errno in USAGE_ERRNOS else RUN_FAILED


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (a torchrun worker exits with it directly)."""
    code = run_verb(argv)
    if "torch" in sys.modules:  # a torchrun worker has imported it; other runs need not
        from budgetnet.train.distributed import end_worker

        end_worker(code)
    return code


def run_verb(argv: list[str] | None) -> int:
    """Parse `argv`, run the verb, and turn each expected failure into one line and an exit code."""
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
    except OSError as e:
        line, code = describe_os_error(e)
        print(f"budgetnet: error: {line}", file=sys.stderr)
        return code
    except MemoryError:
        print("budgetnet: error: out of memory", file=sys.stderr)
        return RUN_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
