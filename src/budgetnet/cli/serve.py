"""`budgetnet serve RUN_OR_MODEL`: try a model in the browser, or call it from scripts, on a local web page."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from budgetnet.cli.argtypes import port_number


def register(verbs: argparse._SubParsersAction) -> None:
    """Add `serve` to the CLI."""
    p = verbs.add_parser(
        "serve",
        help="classify uploaded images on a local web page (Gradio) and its /predict API",
        description="Serves a run directory, .pt checkpoint or exported .onnx (fp32 or int8) through the same "
        "code path as `predict`. Needs the 'serve' extra.",
    )
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run directory, .pt checkpoint or exported .onnx")
    p.add_argument("--port", type=port_number, default=7860, help="TCP port (default 7860)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--data", metavar="PATH", help="dataset whose test images are offered as examples "
                   "(default: the one the model was trained on)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load the model, start the page and serve until Ctrl-C."""
    from budgetnet.deploy.serve import is_loopback, serve_model  # imports gradio: a missing extra fails here

    if not is_loopback(args.host):
        print(f"budgetnet: warning: listening on {args.host}: the page and its API are reachable from the network, "
              "with no login", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="budgetnet-serve-") as folder:
        app, url, note = serve_model(args.model, args.host, args.port, args.data, Path(folder))
        print(f"serving {args.model} at {url} ({note}); Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        finally:
            app.close()
