"""`budgetnet serve RUN_OR_MODEL`: try a model in the browser, or call it from scripts, on a local web page."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import tempfile
import time
from pathlib import Path

from budgetnet.errors import BudgetnetError

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


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


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return value


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """Fail in one line before loading anything if `host:port` cannot be listened on."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself will
            probe.bind((host, port))
    except OSError as e:
        reason = e.strerror or str(e)
        raise BudgetnetError(f"cannot listen on {host}:{port} ({reason}); pick another --port or --host") from None


def run(args: argparse.Namespace) -> int:
    """Load the model, start the page and serve until Ctrl-C."""
    from budgetnet.deploy.predict import load_classifier
    from budgetnet.deploy.rundata import run_data_path
    from budgetnet.deploy.serve import build_app, example_images, launch  # imports gradio: a missing extra fails here

    check_port_free(args.host, args.port)
    if not is_loopback(args.host):
        print(f"budgetnet: warning: listening on {args.host}: the page and its API are reachable from the network, "
              "with no login", file=sys.stderr)
    model = load_classifier(args.model)
    with tempfile.TemporaryDirectory(prefix="budgetnet-serve-") as folder:
        data_path = run_data_path({"data": {"source": model.about.get("data_source") or {}}}, args.data)
        examples, note = example_images(data_path, Path(folder))
        app = build_app(model, args.model, examples)
        url = launch(app, args.host, args.port, Path(folder))
        print(f"serving {args.model} at {url} ({note}); Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        finally:
            app.close()
