"""Many workers on one study: two `budgetnet search` processes against SQLite and against a real PostgreSQL server."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from train_fixtures import write_binary_cifar  # noqa: E402

TINY = ["--budget", "12k", "--proxy-epochs", "2", "--proxy-subset", "40", "--val-split", "10", "--no-references"]
POSTGRES_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


@pytest.fixture()
def data(tmp_path) -> str:
    return str(write_binary_cifar(tmp_path / "cifar"))


def _worker(data: str, out: Path, trials: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "BUDGETNET_CACHE": str(out.parent / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "budgetnet", "search", "--data", data, "--out", str(out),
                             "--trials", str(trials), *TINY, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(workers: list[subprocess.Popen]) -> list[str]:
    outputs = []
    for w in workers:
        out, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
        outputs.append(out)
    return outputs


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def _check_union(rows: list[dict[str, str]], per_worker: int, outputs: list[str]) -> None:
    assert len(rows) == 2 * per_worker
    assert len({r["number"] for r in rows}) == len(rows)  # no trial was run twice
    assert all(r["state"] in ("complete", "pruned") for r in rows)
    workers = {r["worker"] for r in rows}
    assert len(workers) == 2 and all(sum(r["worker"] == w for r in rows) == per_worker for w in workers)
    for out in outputs:
        assert f"this worker trained {per_worker} trial(s)" in out


def test_two_workers_share_the_default_sqlite_study(data, tmp_path) -> None:
    out = tmp_path / "shared"
    outputs = _finish([_worker(data, out, 3), _worker(data, out, 3)])
    _check_union(_rows(out), 3, outputs)


@pytest.fixture()
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a Unix socket in a temporary folder; yields its URL."""
    if not POSTGRES_BINS:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    bin_dir = POSTGRES_BINS[-1]
    root = Path(tempfile.mkdtemp(prefix="budgetnet-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    cluster, log = root / "cluster", root / "server.log"
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(cluster), "-U", "budgetnet", "--auth", "trust"],
                   check=True, capture_output=True, timeout=120)
    options = f"-k {root} -c listen_addresses='' -p 5433"
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(cluster), "-l", str(log), "-o", options, "-w",
                    "start"], check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([*as_user, str(bin_dir / "createdb"), "-h", str(root), "-p", "5433", "-U", "budgetnet",
                        "search"], check=True, capture_output=True, timeout=60)
        yield f"postgresql://budgetnet@/search?host={root}&port=5433"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_on_two_search_directories_share_one_postgresql_study(data, tmp_path, postgres) -> None:
    import optuna

    from budgetnet.search import results, study

    # as on two machines: each worker has its own directory, the study lives in the server
    a, b = tmp_path / "machine-a" / "s", tmp_path / "machine-b" / "s"
    outputs = _finish([_worker(data, a, 2, "--storage", postgres), _worker(data, b, 2, "--storage", postgres)])
    assert not (a / "study.db").exists() and not (b / "study.db").exists()
    # the server holds the union; each trials.csv is a snapshot that may list the other worker's trial as running
    stored = optuna.load_study(study_name="s", storage=study.open_storage(study.storage_url(a, postgres)))
    rows = results.trial_rows(stored)
    _check_union(rows, 2, outputs)
    assert {r["number"] for d in (a, b) for r in _rows(d)} == {str(r["number"]) for r in rows}  # the last lists all
    shown = subprocess.run([sys.executable, "-m", "budgetnet", "search", "show", str(a)], capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0 and "4 trials" in shown.stdout


def test_ctrl_c_ends_the_trial_cleanly_and_keeps_the_finished_ones(data, tmp_path) -> None:
    import optuna

    out = tmp_path / "stopped"
    worker = _worker(data, out, 500)
    deadline = time.monotonic() + 300
    while not (out / "trials.csv").exists() or len(_rows(out)) < 2:
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.2)
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 130 and "re-run the same command to continue" in err
    study = optuna.load_study(study_name="stopped", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states and states.count("COMPLETE") + states.count("PRUNED") >= 2
    finished = len(_rows(out))
    again = _worker(data, out, 1)
    _finish([again])
    assert len(_rows(out)) >= finished + 1  # the same command continues the study
