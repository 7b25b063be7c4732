"""DistributedDataParallel on CPU with gloo: torchrun with 2 processes, sharding, rank-0 writing, resume.

Tolerance: a 2-process run with per-rank batch B follows a 1-process run with batch 2B to within 2%
of the per-epoch mean training loss. They see the same images in the same steps and DDP averages
the gradients, so the only difference is BatchNorm, which normalises each rank's B images with
their own statistics (SyncBatchNorm needs a GPU).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from budgetnet.checkpoint import load_checkpoint
from train_fixtures import TINY_SPEC, write_binary_cifar

TORCHRUN = shutil.which("torchrun")
pytestmark = pytest.mark.skipif(TORCHRUN is None, reason="torchrun is not on PATH")
LOSS_TOLERANCE = 0.02  # relative, per epoch, see the module docstring


@pytest.fixture()
def env(tmp_path):
    TINY_SPEC.save(tmp_path / "tiny.json")
    # 501 test images: the ranks evaluate unequal shards, 251 and 250 images (2 and 1 batches of 500)
    write_binary_cifar(tmp_path / "data", n_per_batch=64, n_test=501)
    environ = {**os.environ, "BUDGETNET_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return tmp_path, environ


def _args(out: str, batch: int, epochs: int = 3, augment: str = "none") -> list[str]:
    return ["train", "--arch", "tiny.json", "--data", "data", "--epochs", str(epochs), "--batch-size", str(batch),
            "--augment", augment, "--lr", "0.05", "--milestones", "2", "--quiet", "--out", out]


def _torchrun(tmp: Path, environ: dict, *args: str) -> subprocess.CompletedProcess:
    command = [TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "budgetnet", *args]
    return subprocess.run(command, cwd=tmp, env=environ, capture_output=True, text=True, timeout=300)


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_ranks_follow_one_process_with_twice_the_batch(env):
    tmp, environ = env
    two = _torchrun(tmp, environ, *_args("two", 32))
    assert two.returncode == 0, two.stderr
    one = subprocess.run([sys.executable, "-m", "budgetnet", *_args("one", 64)], cwd=tmp, env=environ,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    a, b = _losses(tmp / "two"), _losses(tmp / "one")
    assert len(a) == len(b) == 3
    for epoch, (x, y) in enumerate(zip(a, b), 1):
        assert abs(x - y) / y < LOSS_TOLERANCE, f"epoch {epoch}: 2x32 loss {x} vs 1x64 loss {y}"
    # rank 0 alone wrote and reported
    assert two.stdout.count("final test accuracy") == 1
    assert json.loads((tmp / "two" / "env.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in (tmp / "two").iterdir()) == sorted(p.name for p in (tmp / "one").iterdir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_interrupted_distributed_run_resumes_to_the_same_weights(env):
    tmp, environ = env
    write_binary_cifar(tmp / "data", n_per_batch=400, n_test=40)  # 2,000 images: long enough to interrupt
    straight = _torchrun(tmp, environ, *_args("straight", 16, epochs=4, augment="online"))
    assert straight.returncode == 0, straight.stderr

    # launch the two ranks as torchrun does (same environment contract), so each can get its own Ctrl-C
    port = str(_free_port())
    workers = [
        subprocess.Popen([sys.executable, "-m", "budgetnet", *_args("split", 16, epochs=4, augment="online")], cwd=tmp,
                         env={**environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                              "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    metrics = tmp / "split" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.01)
    for w in workers:
        w.send_signal(signal.SIGINT)
    codes = [w.wait(timeout=120) for w in workers]
    assert codes == [130, 130], [w.stderr.read() for w in workers]
    saved = load_checkpoint(tmp / "split")
    assert 1 <= saved.epoch < 4 and saved.world_size == 2
    if saved.partial is not None:  # stopped mid-epoch: each rank's augmentation stream is kept
        assert saved.partial["augment_state"].shape[0] == 2

    refused = subprocess.run([sys.executable, "-m", "budgetnet", "train", "--resume", "split"], cwd=tmp, env=environ,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "trained by 2 process(es)" in refused.stderr

    resumed = _torchrun(tmp, environ, "train", "--resume", "split", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = load_checkpoint(tmp / "straight"), load_checkpoint(tmp / "split")
    assert a.epoch == b.epoch == 4
    for key in a.model:
        assert torch.equal(a.model[key], b.model[key]), key
    assert [m["epoch"] for m in map(json.loads, (tmp / "split" / "metrics.jsonl").read_text().splitlines())] == [1, 2, 3, 4]


@pytest.mark.parametrize("torchrun_env, expected", [
    ({"WORLD_SIZE": "2", "RANK": "1"}, (7, "flushed")),  # a worker
    ({"WORLD_SIZE": "1", "RANK": "0"}, (0, "flushed, returned")),  # one process
    ({"WORLD_SIZE": "two", "RANK": "1"}, (0, "flushed, returned")),  # malformed: the verb reported it already
])
def test_a_worker_ends_at_once_with_its_code_and_its_output_flushed(torchrun_env, expected):
    script = ("import sys; from budgetnet.train.distributed import end_worker\n"
              "print('flushed', end=''); end_worker(7); print(', returned', end='')")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # so an unflushed print is lost
    done = subprocess.run([sys.executable, "-c", script], env={**buffered, **torchrun_env},
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == expected, done.stderr
