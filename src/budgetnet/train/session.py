"""Starting and resuming a run: budget check first, then data, model, optimiser, `fit` and checkpoints."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from budgetnet.checkpoint import restore_rng_state, rng_state
from budgetnet.counts import DEFAULT_BUDGET, check_budget, count_params
from budgetnet.errors import BudgetnetError
from budgetnet.hardware import environment
from budgetnet.presets import resolve_spec
from budgetnet.rundir import RunDir
from budgetnet.spec import ResNetSpec
from budgetnet.train.distributed import SINGLE, Distributed, barrier, device_for, from_environment, init_process_group
from budgetnet.train.ema import Lookahead, WeightEMA
from budgetnet.train.eta import seconds_left, time_left_text
from budgetnet.train.loop import EpochProgress, FitHooks, Interrupted, Setup, StopRequest, Trainee, fit
from budgetnet.train.precision import choose_precision
from budgetnet.train.prepare import PreparedData, check_fits, check_low_res, prepare_data
from budgetnet.train.optimizer import build_optimizer
from budgetnet.train.recipe import Recipe


@dataclass(frozen=True)
class RunOptions:
    """How to run (never what is computed): device, determinism, output verbosity, data access."""

    device: str | None = None  # "cpu", "cuda", "cuda:1"...; None picks CUDA when available
    deterministic: bool = False  # torch.use_deterministic_algorithms for the whole process
    quiet: bool = False  # one plain line per epoch, no progress bars
    download: bool = False  # let the data layer fetch CIFAR-10 if the path holds none
    stop: StopRequest = field(default_factory=StopRequest)  # set by a SIGINT handler to stop cleanly
    compile: str | None = None  # torch.compile mode ("default", "reduce-overhead" = CUDA graphs, ...); None = eager
    tensorboard: bool = False  # also write TensorBoard events into the run's tensorboard/ folder


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


def _checkpoint_state(arch: str, spec: ResNetSpec, recipe: Recipe, info: dict, trainee: Trainee,
                      epoch: int, progress: EpochProgress | None, world_size: int) -> dict[str, Any]:
    model, optimizer = trainee.module, trainee.optimizer
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
        # with EMA, the averaged weights are the reported model (budgetnet.checkpoint loads them first)
        "ema": trainee.ema.state_dict() if trainee.ema is not None else None,
        "lookahead": trainee.lookahead.state_dict() if trainee.lookahead is not None else None,
        "world_size": world_size,  # the shards and the global batch depend on it
    }


def _epoch_line(m: dict[str, Any], epochs: int, left: str = "") -> str:
    test = f" test_loss {m['test_loss']:.4f} test_acc {m['test_acc']:.4f}" if "test_acc" in m else ""
    val = f" val_acc {m['val_acc']:.4f}" if "val_acc" in m else ""
    return (f"epoch {m['epoch']}/{epochs} train_loss {m['train_loss']:.4f} train_acc {m['train_acc']:.4f}"
            f"{test}{val} lr {m['lr']:.4g} {m['images_per_s']:.0f} img/s {m['seconds']:.1f}s{left}")


WHITENING_IMAGES = 5_000  # training images whose patches set a whitening stem (airbench uses 5,000 too)


def whitening_images(prepared: PreparedData, device: torch.device) -> torch.Tensor:
    """The first WHITENING_IMAGES training rows, normalised: what a whitening stem's filters are fitted on."""
    from budgetnet.train.batches import gather

    images, _ = gather(prepared.train, torch.arange(min(WHITENING_IMAGES, len(prepared.train))))
    return prepared.normalizer(images.to(device)).float()


def build_trainee(spec: ResNetSpec, recipe: Recipe, device: torch.device, dist: Distributed,
           compile_mode: str | None, whitening: torch.Tensor | None = None) -> Trainee:
    """The model, optimiser, EMA and Lookahead; a whitening stem is fitted on `whitening` (a resumed run loads it instead)."""
    from budgetnet.model import build_model
    from budgetnet.train.ghostnorm import use_ghost_batch_norm

    torch.manual_seed(recipe.seed)  # the only global seeding: weight init draws from the default generator
    model = build_model(spec).to(device, memory_format=torch.channels_last)
    if whitening is not None:
        model.fit_whitening(whitening)  # every rank fits the same rows, so all start alike
    if recipe.ghost_batch:
        use_ghost_batch_norm(model, recipe.ghost_batch)  # same state dict: checkpoints and exports are unchanged
    optimizer = build_optimizer(model, recipe)
    ema = WeightEMA(model, recipe.ema_decay) if recipe.ema_decay > 0 else None
    lookahead = Lookahead(model, recipe.lookahead) if recipe.lookahead > 0 else None
    trained: torch.nn.Module = model
    if dist.enabled:
        # every rank starts from the same init (same seed); DDP averages gradients in backward
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if compile_mode is not None:
        trained = torch.compile(trained, mode=compile_mode)
    return Trainee(model, trained, optimizer, ema, lookahead)


def batch_augmentation(recipe: Recipe) -> Callable | None:
    """The recipe's per-batch augmentation; None for the offline store and for "none"."""
    from budgetnet.data.augment import online_augmentation

    return online_augmentation(recipe.augment, recipe.shift, recipe.cutout)


def _train(run: RunDir, arch: str, spec: ResNetSpec, recipe: Recipe, prepared: PreparedData, trainee: Trainee,
           device: torch.device, options: RunOptions, start_epoch: int, progress: EpochProgress | None,
           dist: Distributed) -> RunOutcome:
    augment = batch_augmentation(recipe)
    events = None
    if options.tensorboard and dist.is_main:
        from budgetnet.train.tracking import TensorBoardLog

        events = TensorBoardLog(run.tensorboard_dir, recipe)

    def save(epoch: int, partial: EpochProgress | None) -> None:
        if dist.is_main:  # one writer: rank 0 holds the same weights as every other rank
            run.save(_checkpoint_state(arch, spec, recipe, prepared.info, trainee, epoch, partial, dist.world_size))

    history = run.read_metrics() if dist.is_main else []  # a resumed run's earlier epochs, for the time left

    def on_epoch_end(metrics: dict[str, Any]) -> None:
        if dist.is_main:
            # metrics first: a crash before the checkpoint leaves an extra line that resume trims
            run.append_metrics(metrics)
            save(metrics["epoch"], None)
            if events is not None:  # after the checkpoint: a resumed run never logs an epoch twice
                events.epoch_end(metrics)
            history.append(metrics)
            left = seconds_left(history, recipe, prepared.train.images.shape[-1])
            print(_epoch_line(metrics, recipe.epochs, time_left_text(left)), flush=True)

    def on_interrupt(e: Interrupted) -> None:
        save(e.epoch, e.progress)
        barrier(dist)  # every rank agreed to stop; none exits before rank 0's checkpoint is on disk

    try:
        setup = Setup(recipe, prepared.train, prepared.normalizer, device, augment, dist)
        fit(trainee, setup, prepared.test, prepared.val, start_epoch, progress, FitHooks(on_epoch_end, on_interrupt),
            options.stop, show_bar=not options.quiet)
    finally:
        if events is not None:
            events.close()
    barrier(dist)  # the other ranks wait for rank 0's last checkpoint before reading the run back
    return RunOutcome(run.path, run.read_metrics(), True)


def _prepare(data: Any, spec: ResNetSpec, recipe: Recipe, device: torch.device, options: RunOptions,
             dist: Distributed) -> PreparedData:
    """Load data and the store; rank 0 goes first so the store is built once and the others reuse it."""
    if not dist.is_main:
        barrier(dist)
    loaded = _load_data(data, options.download)
    check_fits(spec, loaded)  # before the store is built or anything trains
    prepared = prepare_data(loaded, recipe, device, progress=not options.quiet and dist.is_main)
    if dist.is_main:
        barrier(dist)
    return prepared


def _announce(arch: str, spec: ResNetSpec, recipe: Recipe, prepared: PreparedData, device: torch.device,
              run: RunDir, dist: Distributed = SINGLE) -> None:
    where = f"{dist.world_size} processes ({device.type}), batch {recipe.batch_size} each" if dist.enabled else str(device)
    print(f"training {arch} ({count_params(spec):,} params) on {where} ({recipe.precision}, {recipe.name} recipe), "
          f"{len(prepared.train):,} rows/epoch, {recipe.epochs} epochs, batch {recipe.batch_size} -> {run.path}",
          flush=True)
    if recipe.low_res_epochs:
        first = "epoch 1 trains" if recipe.low_res_epochs == 1 else f"epochs 1-{recipe.low_res_epochs} train"
        print(f"note: {first} on images scaled down to {recipe.low_res_size} px", flush=True)
    reasons = recipe.scaled_down_reasons(len(prepared.train))
    if recipe.name != "paper":
        print(f"note: the {recipe.name} recipe, not the paper's 50-epoch regimen", flush=True)
    elif reasons:
        print(f"note: scaled down from the paper's regimen: {'; '.join(reasons)}", flush=True)


def _start(options: RunOptions) -> tuple[Distributed, torch.device, bool]:
    """This process's rank (from torchrun's environment) and device, with the process group joined, and whether
    freed memory is now kept for reuse (on a CPU with glibc: see train.heap)."""
    from budgetnet.train.heap import keep_freed_memory

    dist = from_environment()
    device = device_for(dist, pick_device(options.device))
    init_process_group(dist, device)
    return dist, device, device.type == "cpu" and keep_freed_memory()


def new_run(arch: str | ResNetSpec, recipe: Recipe, data: Any, out: str | Path,
            budget: int = DEFAULT_BUDGET, options: RunOptions = RunOptions()) -> RunOutcome:
    """Train a new run into `out`; the budget is checked before any data is read."""
    name, spec = resolve_spec(arch)
    check_budget(spec, budget, name)
    check_low_res(spec, recipe)
    run = RunDir(Path(out))
    restarting = run.check_new()
    dist, device, kept = _start(options)
    precision, warning, why = choose_precision(recipe.precision, device)
    if warning and dist.is_main:
        print(f"budgetnet: warning: {warning}", file=sys.stderr, flush=True)
    recipe = recipe.replace(precision=precision)  # recorded as chosen, so a resume elsewhere trains alike
    prepared = _prepare(data, spec, recipe, device, options, dist)
    if dist.is_main:
        if restarting:
            print(f"note: {run.path} holds a run of ours stopped before its first checkpoint; starting it over",
                  flush=True)
        env = {**environment(device, options.deterministic), "world_size": dist.world_size, "compile": options.compile,
               "precision": {"chosen": precision, "why": why}, "keep_freed_memory": kept}
        run.create(name, spec, recipe, prepared.info, env)
        if prepared.val_indices:
            run.write_val_indices(prepared.val_indices)
    whitening = whitening_images(prepared, device) if spec.stem == "whiten" else None
    trainee = build_trainee(spec, recipe, device, dist, options.compile, whitening)
    if dist.is_main:
        _announce(name, spec, recipe, prepared, device, run, dist)
    return _train(run, name, spec, recipe, prepared, trainee, device, options, 0, None, dist)


def resume_run(path: str | Path, data: Any = None, options: RunOptions = RunOptions()) -> RunOutcome:
    """Continue the run in `path` from its last checkpoint; a finished run is returned as is."""
    run = RunDir(Path(path))
    saved = run.load()
    recipe, spec, arch = saved.recipe, saved.spec, saved.arch
    if saved.epoch >= recipe.epochs:
        return RunOutcome(run.path, run.read_metrics(), True)
    recorded = saved.data
    dist, device, _ = _start(options)
    trained_on = saved.world_size
    if trained_on != dist.world_size:
        raise BudgetnetError(f"{run.path} was trained by {trained_on} process(es); resume it with the same number "
                             f"(this is {dist.world_size}), since the data shards and the global batch depend on it")
    source = data if data is not None else recorded.source_path
    prepared = _prepare(source, spec, recipe, device, options, dist)
    if prepared.info["source"].get("fingerprint") != recorded.fingerprint:
        raise BudgetnetError(f"the data at {prepared.info['source'].get('path')} is not the data this run was trained "
                             f"on (fingerprint {prepared.info['source'].get('fingerprint')} != "
                             f"{recorded.fingerprint})")
    trainee = build_trainee(spec, recipe, device, dist, options.compile)
    trainee.module.load_state_dict(saved.model)
    trainee.optimizer.load_state_dict(saved.optimizer)
    if trainee.ema is not None:
        trainee.ema.load_state_dict(saved.ema)
    if trainee.lookahead is not None:
        try:
            trainee.lookahead.load_state_dict(saved.lookahead or {})
        except ValueError as e:
            raise BudgetnetError(f"cannot resume {run.path}: {e}") from None
    restore_rng_state(saved.rng)
    progress = EpochProgress(**saved.partial) if saved.partial else None
    if dist.is_main:
        run.keep_metrics_through(saved.epoch)
        where = f"epoch {saved.epoch + 1}" + (f", step {progress.step + 1}" if progress else "")
        print(f"resuming {arch} in {run.path} at {where} of {recipe.epochs}", flush=True)
    return _train(run, arch, spec, recipe, prepared, trainee, device, options, saved.epoch, progress, dist)


def describe(outcome: RunOutcome) -> str:
    """A one-line summary of a run's reported result: the final epoch's test accuracy."""
    last = outcome.history[-1] if outcome.history else None
    if last is None:
        return f"{outcome.path}: no epoch finished"
    return f"final test accuracy {100 * last['test_acc']:.2f}% after {last['epoch']} epochs ({outcome.path})"


__all__ = ["RunOptions", "RunOutcome", "Trainee", "build_trainee", "describe", "new_run", "pick_device", "resume_run",
           "whitening_images"]
