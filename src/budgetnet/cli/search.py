"""`budgetnet search`: search the design space under a budget with Optuna; `budgetnet search show DIR`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from budgetnet.cli.argtypes import count, duration, nonneg_float, nonneg_int, positive_int
from budgetnet.cli.interrupts import SigintToStop
from budgetnet.cli.main import INTERRUPTED
from budgetnet.counts import DEFAULT_BUDGET
from budgetnet.errors import BudgetnetError

SEARCH_FILE = "search.json"  # in the search directory: the study's name, storage and settings
STOP_MESSAGE = "stopping: the trial in progress is marked failed, finished trials are kept (Ctrl-C again aborts)"


def register(verbs: argparse._SubParsersAction) -> None:
    """Add the `search` verb."""
    p = verbs.add_parser("search", help="search the design space under a budget (Optuna); 'search show DIR'",
                         description="Search ResNet shapes under a parameter budget: each trial's widths are scaled "
                                     "to fill the budget, trained briefly on a training subset and scored on held-out "
                                     "training images (never the test set). Re-running the same command continues "
                                     "the study. 'budgetnet search show DIR' prints its leaderboard.")
    p.add_argument("action", nargs="?", choices=["show"], help="show: print the leaderboard of the search in DIR")
    p.add_argument("directory", nargs="?", metavar="DIR", help="with show: the search directory")
    p.add_argument("--data", help="CIFAR-10 (or an image-folder tree) to train the proxies on")
    p.add_argument("--out", type=Path, help="search directory: study.db, trials.csv, pareto.png, best.json")
    p.add_argument("--budget", type=count, default=DEFAULT_BUDGET, help="parameter budget, e.g. 300k or 1M (default 5M)")
    p.add_argument("--trials", type=nonneg_int, default=20, help="trials to train in this invocation (default 20)")
    p.add_argument("--max-macs", type=count, help="MAC limit per 32x32 image; makes MACs a second objective")
    p.add_argument("--max-latency-ms", type=nonneg_float,
                   help="latency limit on this machine; makes latency a second objective")
    p.add_argument("--latency-batch", type=positive_int, default=1, help="images per timed forward pass (default 1)")
    p.add_argument("--time", type=duration, help="start no trial after this much wall time, e.g. 30m or 2h")
    p.add_argument("--proxy-epochs", type=positive_int, default=2, help="epochs of the proxy training (default 2)")
    p.add_argument("--proxy-subset", type=count, default=5_000, help="training images per proxy (default 5k)")
    p.add_argument("--val-split", type=positive_int, default=2_000,
                   help="further training images held out to score the proxies (default 2000)")
    p.add_argument("--storage", help="database URL shared by many workers, e.g. postgresql://user@host/db "
                                     "(default: an SQLite file in --out)")
    p.add_argument("--study-name", help="study name inside --storage (default: the --out folder's name)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seeds the proxies and, with the worker, the sampler")
    p.add_argument("--no-references", action="store_true",
                   help="skip training the paper's presets, scaled to the budget, as reference points")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="with show: print the leaderboard as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch to a search or to `show`."""
    if args.action == "show":
        return show(args)
    if args.directory is not None:
        raise BudgetnetError(f"unexpected argument {args.directory!r}; did you mean 'budgetnet search show DIR'?")
    if args.data is None or args.out is None:
        raise BudgetnetError("a search needs --data PATH and --out DIR")
    if args.trials == 0:
        raise BudgetnetError("--trials must be at least 1 (it is how many more trials this invocation trains)")
    return search(args)


def _recorded(out: Path) -> dict | None:
    path = out / SEARCH_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BudgetnetError(f"{path} is not a budgetnet search record: {e}") from None


def search(args: argparse.Namespace) -> int:
    """Open (or continue) the study and train this worker's trials."""
    from budgetnet.data import load_cifar
    from budgetnet.fsutil import atomic_write_text
    from budgetnet.search import proxy, results, runner, study, space
    from budgetnet.train.heap import keep_freed_memory
    from budgetnet.train.loop import StopRequest
    from budgetnet.train.prepare import prepare_data
    from budgetnet.train.session import pick_device

    budget = study.Budget(args.trials, args.time)  # --time counts from the command's start, references included
    data = proxy.without_test(load_cifar(args.data))
    limits = space.Limits(args.budget, args.max_macs, num_classes=len(data.classes),
                          in_channels=data.train_images.shape[1])
    smallest = space.smallest_params(limits)
    if args.budget < smallest:
        raise BudgetnetError(f"--budget {args.budget:,} is too small: the smallest network in the search space "
                             f"has {smallest:,} parameters")
    available = len(data.train_labels)
    if args.proxy_subset + args.val_split > available:
        raise BudgetnetError(f"--proxy-subset {args.proxy_subset:,} plus --val-split {args.val_split:,} is more than "
                             f"the {available:,} training images in {args.data}")
    settings = study.Settings(limits, proxy.Proxy(args.proxy_epochs, args.proxy_subset, args.val_split, args.seed),
                              args.max_latency_ms, args.latency_batch, data.source.get("fingerprint"))
    out = args.out
    recorded = _recorded(out)
    changed = settings.differences(recorded.get("settings", {})) if recorded is not None else []
    if changed:
        raise BudgetnetError(f"{out} holds a search with other settings ({'; '.join(changed)}); use another --out")
    out.mkdir(parents=True, exist_ok=True)
    url = study.storage_url(out, args.storage)
    name = args.study_name or (recorded or {}).get("study_name") or out.resolve().name
    worker = study.worker_name()
    opened = study.open_study(url, name, settings, study.sampler_seed(args.seed, worker))
    atomic_write_text(out / SEARCH_FILE, json.dumps({"study_name": name, "storage": study.redact(url),
                                                     "settings": settings.to_dict()}, indent=2) + "\n")
    device = pick_device(args.device)
    if device.type == "cpu":
        keep_freed_memory()  # proxy training reuses freed memory, as budgetnet train does
    prepared = prepare_data(data, settings.proxy.recipe(device), device, progress=False)
    second = settings.second_objective
    print(f"search {name} ({study.redact(url)}): budget {args.budget:,} params"
          f"{f', max {args.max_macs:,} MACs' if args.max_macs else ''}"
          f"{f', max {args.max_latency_ms:g} ms' if args.max_latency_ms is not None else ''}; proxy "
          f"{args.proxy_epochs} epochs on {args.proxy_subset:,} images, scored on {args.val_split:,} held out; "
          f"worker {worker} on {device}", flush=True)
    stop = StopRequest()
    log = lambda line: print(line, flush=True)  # noqa: E731
    with SigintToStop(stop, STOP_MESSAGE):
        if not args.no_references:
            runner.run_references(opened, prepared, settings, device, stop, log)
            results.write_all(opened, out, second)
        trained = runner.run_trials(opened, prepared, settings, budget, device, stop,
                                    log, lambda: results.write_all(opened, out, second))
    board = results.write_all(opened, out, second)
    print(results.format_leaderboard(board))
    print(f"this worker trained {trained} trial(s); results in {out} (trials.csv, pareto.png, best.json)")
    if stop.requested:
        print("stopped by Ctrl-C; re-run the same command to continue the study", file=sys.stderr)
        return INTERRUPTED
    return 0


def show(args: argparse.Namespace) -> int:
    """Print the leaderboard of the search in DIR."""
    from budgetnet.search import results, study
    from budgetnet.search.proxy import Proxy
    from budgetnet.search.space import Limits

    if args.directory is None:
        raise BudgetnetError("search show needs the search directory: budgetnet search show DIR")
    out = Path(args.directory)
    recorded = _recorded(out)
    if recorded is None:
        raise BudgetnetError(f"{out} holds no budgetnet search ({SEARCH_FILE} is missing)")
    if args.storage is not None:
        url = study.storage_url(out, args.storage)
    else:
        url = recorded["storage"]
        if "***" in url:
            raise BudgetnetError("the study's database URL has a password, which is not stored: pass --storage URL")
    opened = _load(url, recorded["study_name"])
    saved = recorded["settings"]
    second = study.Settings(Limits(**saved["limits"]), Proxy(**saved["proxy"]), saved["max_latency_ms"],
                            saved["latency_batch"]).second_objective
    board = results.leaderboard(opened, second)
    print(json.dumps(board, indent=2) if args.json else results.format_leaderboard(board))
    return 0


def _load(url: str, name: str):  # noqa: ANN202
    import optuna

    from budgetnet.search.study import open_storage, redact

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise BudgetnetError(f"no study named {name!r} at {redact(url)}") from None
