"""One search worker: draw, fill, train the proxy, tell Optuna; and the scaled presets it is compared with."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from budgetnet.counts import count_macs, count_params
from budgetnet.errors import BudgetnetError
from budgetnet.presets import PAPER_APPROACHES, get_preset
from budgetnet.search import proxy
from budgetnet.search.space import SpecRejected, describe, draw_shape, fill, scale_to_fit
from budgetnet.search.study import MAX_REJECTIONS, Budget, Settings, worker_name
from budgetnet.spec import ResNetSpec
from budgetnet.train.loop import Interrupted, StopRequest, TrainingDiverged
from budgetnet.train.prepare import PreparedData

REFERENCE_PREFIX = "reference:"  # study user attributes holding the scaled presets' proxy results
Log = Callable[[str], None]


def _measure(spec: ResNetSpec, settings: Settings, device: torch.device) -> dict[str, Any]:
    """The record every trained spec carries: the spec itself, its counts and, if asked, its latency."""
    record: dict[str, Any] = {"spec": spec.to_dict(), "params": count_params(spec), "macs": count_macs(spec)}
    if settings.max_latency_ms is not None:
        record["latency_ms"] = proxy.latency_ms(spec, settings.latency_batch, device)
    return record


def _objectives(accuracy: float, record: dict[str, Any], settings: Settings) -> list[float]:
    second = settings.second_objective
    return [accuracy] + ([float(record[second])] if second else [])


def run_trials(study: Any, prepared: PreparedData, settings: Settings, budget: Budget, device: torch.device,
               stop: StopRequest, log: Log, after_trial: Callable[[], None]) -> int:
    """Train trials until `budget` is spent or a stop is requested; returns how many were trained.

    Shapes that no width fits are told to Optuna as failed with a `rejected` reason and are not
    counted: they cost no training. Ctrl-C fails the trial in progress; every finished one is kept.
    """
    import optuna
    from optuna.trial import TrialState

    stop.armed = True  # from here on, Ctrl-C asks for a clean stop
    recipe, worker = settings.proxy.recipe(device), worker_name()
    single = settings.second_objective is None
    done = rejections = 0
    while not budget.spent(done) and not stop.requested:
        trial = study.ask()
        trial.set_user_attr("worker", worker)
        try:
            spec = fill(draw_shape(trial), settings.limits)
            record = _measure(spec, settings, device)
            if settings.max_latency_ms is not None and record["latency_ms"] > settings.max_latency_ms:
                raise SpecRejected(f"{record['latency_ms']:.2f} ms per batch of {settings.latency_batch}, over "
                                   f"--max-latency-ms {settings.max_latency_ms:g}")
        except SpecRejected as e:
            trial.set_user_attr("rejected", str(e))
            study.tell(trial, state=TrialState.FAIL)
            rejections += 1
            if rejections >= MAX_REJECTIONS:
                raise BudgetnetError(f"{MAX_REJECTIONS} drawn shapes in a row fit no width under the limits; "
                                     f"raise --budget, --max-macs or --max-latency-ms") from None
            continue
        rejections = 0
        for key, value in record.items():
            trial.set_user_attr(key, value)
        history: list[float] = []

        def report(metrics: dict[str, Any]) -> None:
            history.append(metrics["val_acc"])
            trial.set_user_attr("val_acc_per_epoch", history)
            if single:  # Optuna prunes single-objective studies only
                trial.report(metrics["val_acc"], metrics["epoch"])
                # a trial that reached its last epoch is complete: pruning it then would save nothing
                if metrics["epoch"] < recipe.epochs and trial.should_prune():
                    raise optuna.TrialPruned()

        started = time.perf_counter()
        try:
            proxy.train(spec, recipe, prepared, device, report, stop)
        except optuna.TrialPruned:
            state, values, end = TrialState.PRUNED, None, "pruned"
        except Interrupted:
            trial.set_user_attr("interrupted", True)
            study.tell(trial, state=TrialState.FAIL)
            log(f"trial {trial.number} stopped by Ctrl-C; it is marked failed, every finished trial is kept")
            break
        except TrainingDiverged as e:
            trial.set_user_attr("diverged", str(e))
            state, values, end = TrialState.FAIL, None, "diverged"
        else:
            state, values, end = TrialState.COMPLETE, _objectives(history[-1], record, settings), None
        seconds = time.perf_counter() - started
        trial.set_user_attr("seconds", seconds)
        study.tell(trial, values, state=state)
        done += 1
        score = f"val {100 * history[-1]:.2f}%" if history else "no epoch"
        log(f"trial {trial.number}: {describe(spec)}: {record['params']:,} params, {record['macs'] / 1e6:.1f}M MACs"
            f"{_latency(record)} -> {score}{f' ({end})' if end else ''} in {seconds:.0f}s")
        after_trial()
    return done


def _latency(record: dict[str, Any]) -> str:
    return f", {record['latency_ms']:.2f} ms" if "latency_ms" in record else ""


def run_references(study: Any, prepared: PreparedData, settings: Settings, device: torch.device,
                   stop: StopRequest, log: Log, names: tuple[str, ...] = PAPER_APPROACHES) -> None:
    """Train each paper preset, widths scaled to the limits, under the same proxy (once per study)."""
    recipe = settings.proxy.recipe(device)
    stop.armed = True
    for name in names:
        key = REFERENCE_PREFIX + name
        if key in study.user_attrs or stop.requested:
            continue
        try:
            spec = scale_to_fit(get_preset(name).spec, settings.limits)
        except SpecRejected as e:
            study.set_user_attr(key, {"name": name, "skipped": str(e)})
            log(f"reference {name}: skipped, {e}")
            continue
        record = _measure(spec, settings, device)
        history: list[float] = []
        started = time.perf_counter()
        try:
            proxy.train(spec, recipe, prepared, device, lambda m: history.append(m["val_acc"]), stop)
        except Interrupted:
            log(f"reference {name} stopped by Ctrl-C; it is trained again next time")
            return
        except TrainingDiverged as e:
            record["diverged"] = str(e)
        record.update(name=name, val_acc=history[-1] if history else None, seconds=time.perf_counter() - started)
        study.set_user_attr(key, record)
        score = f"val {100 * history[-1]:.2f}%" if history else "diverged"
        log(f"reference {name} scaled to {describe(spec)}: {record['params']:,} params, "
            f"{record['macs'] / 1e6:.1f}M MACs{_latency(record)} -> {score}")

