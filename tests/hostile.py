"""Helpers for the hostile-input tests: the one-line rule, a tiny training setup, small tmpfs mounts, a hang guard."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from budgetnet.cli.main import main
from train_fixtures import TINY_SPEC, write_binary_cifar


def fails_in_one_line(capsys: pytest.CaptureFixture, argv: list, code: int, expected: str) -> str:
    """Run the CLI; it must exit `code` with exactly one stderr line holding `expected`, and no traceback."""
    capsys.readouterr()
    try:
        got = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own usage errors
        got = e.code
    err = capsys.readouterr().err
    assert got == code, (got, err)
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err
    return err


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A 50-image dataset in the binary layout and a 1,506-parameter spec file, in a private cache and cwd."""
    monkeypatch.setenv("BUDGETNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "tiny.json"
    TINY_SPEC.save(spec)
    return {"data": str(write_binary_cifar(tmp_path / "cifar")), "spec": str(spec), "tmp": tmp_path}


def train_argv(tiny: dict, out: str | Path, *extra: str) -> list[str]:
    """`budgetnet train` of the tiny spec on the tiny data, quiet, one epoch unless `extra` says otherwise."""
    return ["train", "--arch", tiny["spec"], "--data", tiny["data"], "--out", str(out), "--quiet",
            "--batch-size", "32", "--epochs", "1", *extra]


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "256k") mounted at `where`; skips the test, saying why, where mounting is refused."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill_up(path: Path) -> None:
    """Write zeros to `path` until its file system is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


@contextlib.contextmanager
def no_hang(seconds: int = 10) -> Iterator[None]:
    """Fail with TimeoutError instead of hanging the suite when the code under test blocks."""
    def _raise(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: it blocked")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
