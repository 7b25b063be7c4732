"""Starting and resuming a run: budget check first, then data, model, optimiser, `fit` and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from budgetnet.counts import DEFAULT_BUDGET, check_budget, count_params
from budgetnet.errors import BudgetnetError
from budgetnet.presets import resolve_spec
from budgetnet.spec import ResNetSpec
from budgetnet.train.loop import EpochProgress, Interrupted, StopRequest, fit
from budgetnet.train.prepare import PreparedData, prepare_data
from budgetnet.train.recipe import Recipe
from budgetnet.train.rundir import RunDir, environment, restore_rng_state, rng_state


@dataclass(frozen=True)
class RunOptions:
    """How to run (never what is computed): device, determinism, output verbosity, data access."""

    device: str | None = None  # "cpu", "cuda", "cuda:1"...; None picks CUDA when available
    deterministic: bool = False  # torch.use_deterministic_algorithms for the whole process
    quiet: bool = False  # one plain line per epoch, no progress bars
    download: bool = False  # let the data layer fetch CIFAR-10 if the path holds none
    stop: StopRequest = field(default_factory=StopRequest)  # set by a SIGINT handler to stop cleanly


@dataclass(frozen=True)
class RunOutcome:
    """Where a run lives and every epoch's metrics so far."""

    path: Path
    history: list[dict[str, Any]]
    finished: bool


def pick_device(name: str | None) -> torch.device:
    """The device to train on: `name` if given (and present), else CUDA when available, else CPU."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BudgetnetError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BudgetnetError(f"device {name!r} requested but CUDA is not available here")
    if device.type not in ("cpu", "cuda"):
        raise BudgetnetError(f"device {name!r} is not supported; use cpu, cuda or cuda:N")
    return device


def _load_data(data: Any, download: bool) -> Any:
    if isinstance(data, (str, Path)):
        from budgetnet.data import load_cifar

        return load_cifar(data, download=download)
    if data is None:
        raise BudgetnetError("no dataset given; pass --data PATH (a CIFAR-10 folder, archive or file)")
    return data  # already a CifarData


def _checkpoint_state(arch: str, spec: ResNetSpec, recipe: Recipe, info: dict, model: torch.nn.Module,
                      optimizer: torch.optim.Optimizer, epoch: int, progress: EpochProgress | None) -> dict[str, Any]:
    return {
        "arch": arch,
        "spec": spec.to_dict(),
        "recipe": recipe.to_dict(),
        "data": info,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,  # completed epochs
        "partial": progress.to_state() if progress is not None else None,
        # the schedule is a pure function of (recipe, epoch, step): this is a record, not state to restore
        "schedule": {"epoch": epoch, "step": progress.step if progress else 0, "lr": optimizer.param_groups[0]["lr"]},
        "rng": rng_state(),
    }


def _epoch_line(m: dict[str, Any], epochs: int) -> str:
    val = f" val_acc {m['val_acc']:.4f}" if "val_acc" in m else ""
    return (f"epoch {m['epoch']}/{epochs} train_loss {m['train_loss']:.4f} train_acc {m['train_acc']:.4f} "
            f"test_loss {m['test_loss']:.4f} test_acc {m['test_acc']:.4f}{val} lr {m['lr']:.4g} "
            f"{m['images_per_s']:.0f} img/s {m['seconds']:.1f}s")


def _build(spec: ResNetSpec, recipe: Recipe, device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    from budgetnet.model import build_model

    torch.manual_seed(recipe.seed)  # the only global seeding: weight init draws from the default generator
    model = build_model(spec).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    return model, optimizer


def _train(run: RunDir, arch: str, spec: ResNetSpec, recipe: Recipe, prepared: PreparedData,
           model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
           options: RunOptions, start_epoch: int, progress: EpochProgress | None) -> RunOutcome:
    augment = None
    if recipe.augment == "online":
        from budgetnet.data import online_augment as augment

    def save(epoch: int, partial: EpochProgress | None) -> None:
        run.save(_checkpoint_state(arch, spec, recipe, prepared.info, model, optimizer, epoch, partial))

    def on_epoch_end(metrics: dict[str, Any]) -> None:
        # metrics first: a crash before the checkpoint leaves an extra line that resume trims
        run.append_metrics(metrics)
        save(metrics["epoch"], None)
        print(_epoch_line(metrics, recipe.epochs), flush=True)

    def on_interrupt(e: Interrupted) -> None:
        save(e.epoch, e.progress)

    fit(model, optimizer, recipe, prepared.train, prepared.test, prepared.normalizer, device,
        val=prepared.val, augment=augment, start_epoch=start_epoch, progress=progress,
        on_epoch_end=on_epoch_end, on_interrupt=on_interrupt, stop=options.stop, show_bar=not options.quiet)
    return RunOutcome(run.path, run.read_metrics(), True)


def _announce(arch: str, spec: ResNetSpec, recipe: Recipe, prepared: PreparedData, device: torch.device,
              run: RunDir) -> None:
    print(f"training {arch} ({count_params(spec):,} params) on {device} ({recipe.precision}), "
          f"{len(prepared.train):,} rows/epoch, {recipe.epochs} epochs, batch {recipe.batch_size} -> {run.path}",
          flush=True)
    reasons = recipe.scaled_down_reasons(len(prepared.train))
    if reasons:
        print(f"note: scaled down from the paper's regimen: {'; '.join(reasons)}", flush=True)


def new_run(arch: str | ResNetSpec, recipe: Recipe, data: Any, out: str | Path,
            budget: int = DEFAULT_BUDGET, options: RunOptions = RunOptions()) -> RunOutcome:
    """Train a new run into `out`; the budget is checked before any data is read."""
    name, spec = resolve_spec(arch)
    check_budget(spec, budget, name)
    run = RunDir(Path(out))
    if run.has_checkpoint():
        raise BudgetnetError(f"{run.path} already holds a run; continue it with --resume {run.path}")
    if run.metrics_path.exists():
        raise BudgetnetError(f"{run.path} holds a run that never saved a checkpoint; delete it or pick another --out")
    device = pick_device(options.device)
    prepared = prepare_data(_load_data(data, options.download), recipe, device, progress=not options.quiet)
    run.create(name, spec, recipe, prepared.info, environment(device, options.deterministic))
    if prepared.val_indices:
        run.write_json("val_indices.json", prepared.val_indices)
    model, optimizer = _build(spec, recipe, device)
    _announce(name, spec, recipe, prepared, device, run)
    return _train(run, name, spec, recipe, prepared, model, optimizer, device, options, 0, None)


def resume_run(path: str | Path, data: Any = None, options: RunOptions = RunOptions()) -> RunOutcome:
    """Continue the run in `path` from its last checkpoint; a finished run is returned as is."""
    run = RunDir(Path(path))
    state = run.load()
    recipe, spec, arch = Recipe.from_dict(state["recipe"]), ResNetSpec.from_dict(state["spec"]), state["arch"]
    if state["epoch"] >= recipe.epochs:
        return RunOutcome(run.path, run.read_metrics(), True)
    recorded = state["data"]["source"]
    loaded = _load_data(data if data is not None else recorded.get("path"), options.download)
    if loaded.source.get("fingerprint") != recorded.get("fingerprint"):
        raise BudgetnetError(f"the data at {loaded.source.get('path')} is not the data this run was trained on "
                             f"(fingerprint {loaded.source.get('fingerprint')} != {recorded.get('fingerprint')})")
    device = pick_device(options.device)
    prepared = prepare_data(loaded, recipe, device, progress=not options.quiet)
    model, optimizer = _build(spec, recipe, device)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_state(state["rng"])
    run.keep_metrics_through(state["epoch"])
    progress = EpochProgress(**state["partial"]) if state.get("partial") else None
    where = f"epoch {state['epoch'] + 1}" + (f", step {progress.step + 1}" if progress else "")
    print(f"resuming {arch} in {run.path} at {where} of {recipe.epochs}", flush=True)
    return _train(run, arch, spec, recipe, prepared, model, optimizer, device, options, state["epoch"], progress)


def describe(outcome: RunOutcome) -> str:
    """A one-line summary of a run's reported result: the final epoch's test accuracy."""
    last = outcome.history[-1] if outcome.history else None
    if last is None:
        return f"{outcome.path}: no epoch finished"
    return f"final test accuracy {100 * last['test_acc']:.2f}% after {last['epoch']} epochs ({outcome.path})"


__all__ = ["RunOptions", "RunOutcome", "describe", "new_run", "pick_device", "resume_run"]
