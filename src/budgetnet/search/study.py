"""An Optuna study of the design space: where it is stored, what it was started with, and how a worker runs trials.

Any number of workers (processes, machines) may run `run_trials` against one study: Optuna's storage
hands each its own trials. The settings a study was started with are stored in the study itself, so a
worker with other settings is refused instead of mixing two searches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import random
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from budgetnet.errors import BudgetnetError
from budgetnet.search.proxy import Proxy
from budgetnet.search.space import SPACE_VERSION, Limits

SETTINGS_ATTR = "budgetnet_settings"
DEFAULT_DB = "study.db"
SQLITE_TIMEOUT_S = 60  # how long a worker waits for another's write lock on the SQLite file
STORAGE_ATTEMPTS = 5  # tries at opening a storage that another worker is creating at the same moment
MAX_REJECTIONS = 200  # drawn shapes in a row that no width fits: the limits leave the space almost empty


@dataclass(frozen=True)
class Settings:
    """What a study's trials are comparable under; every worker of one study must agree on all of it."""

    limits: Limits
    proxy: Proxy
    max_latency_ms: float | None = None  # a second objective, measured on each worker's machine
    latency_batch: int = 1
    data_fingerprint: str | None = None  # the training data every trial reads
    space: int = SPACE_VERSION

    @property
    def second_objective(self) -> str | None:
        """'macs' or 'latency_ms' when the search trades accuracy against it, else None."""
        if self.max_latency_ms is not None:
            return "latency_ms"
        return "macs" if self.limits.max_macs is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, and equal for equal settings."""
        return dataclasses.asdict(self)

    def differences(self, recorded: dict[str, Any]) -> list[str]:
        """'field: recorded -> given' for every setting that differs from `recorded`."""
        mine = _flatten(self.to_dict())
        theirs = _flatten(recorded)
        return [f"{k}: {theirs.get(k)!r} -> {mine.get(k)!r}" for k in sorted(set(mine) | set(theirs))
                if mine.get(k) != theirs.get(k)]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def redact(url: str) -> str:
    """`url` without its password, for messages and files."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def storage_url(out: Path, storage: str | None) -> str:
    """The SQLAlchemy URL of the study: the given one, or an SQLite file in the search directory."""
    if storage is None:
        return f"sqlite:///{(out / DEFAULT_DB).resolve()}"
    scheme = urlsplit(storage).scheme
    if scheme == "postgresql":
        return "postgresql+psycopg" + storage[len("postgresql"):]  # psycopg 3, from the search extra
    if not scheme:
        raise BudgetnetError(f"--storage {storage!r} is not a database URL; use e.g. postgresql://user@host/db")
    return storage


@contextlib.contextmanager
def _creation_lock(url: str) -> Iterator[None]:
    """For an SQLite file, one worker at a time creates or upgrades its schema (Optuna's own step is not atomic)."""
    if not url.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(url[len("sqlite:///"):]).with_suffix(".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_storage(url: str) -> Any:
    """Optuna's storage at `url`; an unreachable database is one BudgetnetError line, not a driver traceback."""
    import optuna
    import sqlalchemy.exc

    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with _creation_lock(url):
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except sqlalchemy.exc.SQLAlchemyError as e:
            # workers that start together race to create the schema: the loser sees the winner's rows
            racing = isinstance(e, sqlalchemy.exc.IntegrityError) or any(
                sign in str(e) for sign in ("locked", "UNIQUE constraint", "duplicate key", "already exists"))
            if racing and attempt + 1 < STORAGE_ATTEMPTS:
                time.sleep(0.2 * (attempt + 1))
                continue
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            raise BudgetnetError(f"cannot reach the database at {redact(url)}: {reason}") from None
        except ModuleNotFoundError as e:
            raise BudgetnetError(f"the database URL {redact(url)} needs the Python module {e.name}; "
                                 f"pip install it, or use postgresql://... (psycopg, in the search extra)") from None
    raise AssertionError("unreachable")


def open_study(url: str, name: str, settings: Settings, sampler_seed: int) -> Any:
    """Create the study, or load it after checking that it was started with the same settings."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # multivariate/group TPE is marked experimental, and says so on every start
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    directions = ["maximize"] + (["minimize"] if settings.second_objective else [])
    single = len(directions) == 1
    # TPE handles the conditional blocks_i; Hyperband stops weak trials after their first epochs
    # constant_liar: workers sharing the study avoid drawing next to each other's running trials
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, multivariate=True, group=True, constant_liar=True)
    pruner = (optuna.pruners.HyperbandPruner(min_resource=1, max_resource=settings.proxy.epochs) if single
              else optuna.pruners.NopPruner())
    storage = open_storage(url)
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler,
                                    pruner=pruner, load_if_exists=True)
    except Exception as e:  # noqa: BLE001  SQLAlchemy raises its own classes for a database that goes away
        raise BudgetnetError(f"cannot open study {name!r} at {redact(url)}: {str(e).splitlines()[0]}") from None
    recorded = study.user_attrs.get(SETTINGS_ATTR)
    changed = settings.differences(recorded) if recorded is not None else []
    if recorded is None:
        study.set_user_attr(SETTINGS_ATTR, settings.to_dict())
    elif changed:
        raise BudgetnetError(f"study {name!r} at {redact(url)} was started with other settings "
                             f"({'; '.join(changed)}); use another --out or the same flags")
    if [d.name.lower() for d in study.directions] != directions:
        raise BudgetnetError(f"study {name!r} at {redact(url)} has other objectives; use another --out")
    return study


def worker_name() -> str:
    """host:pid, recorded with each trial so a shared study shows who ran what."""
    return f"{socket.gethostname()}:{os.getpid()}"


def sampler_seed(seed: int, worker: str) -> int:
    """A sampler seed from --seed and the worker: workers of one study must not draw the same shapes."""
    return random.Random(f"{seed}:{worker}").getrandbits(32)


@dataclass
class Budget:
    """When a worker stops starting trials: after `trials` trained trials or `seconds` of wall time."""

    trials: int
    seconds: float | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)

    def spent(self, done: int) -> bool:
        """True when no further trial should start."""
        if done >= self.trials:
            return True
        return self.seconds is not None and time.monotonic() - self.started >= self.seconds

