"""Run directories and stores: torn metrics are trimmed on resume, stores are verified before reuse, killed
builds' temporary files are swept, a full disk is one line (never a signal), runs stopped before their
first checkpoint restart, and a --subset larger than the data is refused."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import fails_in_one_line, fill_up, small_tmpfs, tiny, train_argv  # noqa: F401  (tiny is a fixture)
from train_fixtures import TINY_SPEC, fake_cifar

from budgetnet.checkpoint import save_checkpoint
from budgetnet.cli.main import RUN_FAILED, USAGE_ERROR, describe_os_error, main
from budgetnet.data import load_or_build_store
from budgetnet.data.store import default_store_dir
from budgetnet.presets import PRESETS, Preset
from budgetnet.rundir import RunDir
from budgetnet.train.reproduce import paper_recipe


def _one_epoch_of_two(tiny: dict, out: Path) -> Path:
    """A run with one of its two epochs done: trained for one, then its checkpoint asks for two."""
    assert main(train_argv(tiny, out)) == 0
    checkpoint = out / "checkpoints" / "last.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["recipe"]["epochs"] = 2
    save_checkpoint(checkpoint, {k: v for k, v in state.items() if k not in ("kind", "version")})
    return out


def test_a_torn_last_metrics_line_is_trimmed_on_resume(tiny: dict, capsys) -> None:
    run = _one_epoch_of_two(tiny, tiny["tmp"] / "run")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')  # a crash in the middle of the write
    assert main(["plot", str(run)]) == 0  # a reader leaves the torn line out
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_other_metrics_damage_is_one_line(tiny: dict, capsys) -> None:
    run = _one_epoch_of_two(tiny, tiny["tmp"] / "run")
    (run / "metrics.jsonl").write_text("garbage\n" + (run / "metrics.jsonl").read_text())
    fails_in_one_line(capsys, ["plot", run], USAGE_ERROR, "metrics.jsonl:1 is not valid JSON")
    fails_in_one_line(capsys, ["train", "--resume", run], USAGE_ERROR, "metrics.jsonl:1 is not valid JSON")
    (run / "metrics.jsonl").write_bytes(b"\xff\xfe\n")
    fails_in_one_line(capsys, ["plot", run], USAGE_ERROR, "not UTF-8 text")


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("damage, reason", [
    ("flip an image byte", "images.npy does not match the checksum in its manifest"),
    ("label out of range", "labels.npy does not hold the data's labels"),
])
def test_a_damaged_store_is_rebuilt_saying_why(damage: str, reason: str, tmp_path: Path, capsys) -> None:
    data = fake_cifar(20)
    store = load_or_build_store(data, out_dir=tmp_path / "store", progress=False)
    original = np.array(store.images)
    del store
    if damage == "flip an image byte":
        _flip_byte(tmp_path / "store" / "images.npy", 4000)
    else:
        labels = np.load(tmp_path / "store" / "labels.npy")
        labels[7] = 65
        np.save(tmp_path / "store" / "labels.npy", labels)  # same size: only the content tells
    capsys.readouterr()
    rebuilt = load_or_build_store(data, out_dir=tmp_path / "store", progress=False)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"rebuilding the store in {tmp_path / 'store'}: {reason}" in err, err
    assert np.array_equal(rebuilt.images, original) and rebuilt.labels.max() < 10
    load_or_build_store(data, out_dir=tmp_path / "store", progress=False)
    assert capsys.readouterr().err == ""  # verified, reused silently


def test_temporary_files_of_killed_builds_are_swept(tmp_path: Path) -> None:
    data, cache = fake_cifar(20), tmp_path / "cache"
    folder, other = default_store_dir(data, 0, 20, cache), cache / "stores" / "another-key"
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid names a writer that no longer runs
    for where in (folder, other):
        where.mkdir(parents=True)
        (where / f".images.npy.{dead.pid}.abcd1234.tmp").write_bytes(b"\0" * 4096)
    alive = other / ".images.npy.1.abcd1234.tmp"  # pid 1 runs: its writer may still be at work
    alive.write_bytes(b"")
    legacy_old, legacy_new = other / ".images.npy.old_1234.tmp", other / ".images.npy.new_1234.tmp"
    legacy_old.write_bytes(b"")
    legacy_new.write_bytes(b"")
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
    load_or_build_store(data, seed=0, subset=None, progress=False, cache_dir=cache)
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())
    assert sorted(p.name for p in other.iterdir()) == sorted([alive.name, legacy_new.name])


def test_a_full_disk_building_a_store_is_one_line_not_a_signal(tiny: dict) -> None:
    with small_tmpfs(tiny["tmp"] / "disk", "256k") as disk:  # the 50-image store needs 922 kB
        done = subprocess.run([sys.executable, "-m", "budgetnet", "augment", "--data", tiny["data"],
                               "--out", str(disk / "store")], capture_output=True, text=True, timeout=120)
        assert done.returncode == RUN_FAILED, (done.returncode, done.stderr)  # SIGBUS would be -7
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"budgetnet: error: disk full: {disk / 'store' / 'images.npy'}" in done.stderr
        assert list((disk / "store").iterdir()) == []  # the partial file is gone


def test_a_full_disk_in_training_is_one_line(tiny: dict, monkeypatch, capsys) -> None:
    with small_tmpfs(tiny["tmp"] / "disk", "256k") as disk:
        monkeypatch.setenv("BUDGETNET_CACHE", str(disk / "cache"))  # the offline store goes here
        fails_in_one_line(capsys, train_argv(tiny, tiny["tmp"] / "run"), RUN_FAILED, "disk full: ")


def test_a_checkpoint_onto_a_full_disk_names_its_path(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        fill_up(disk / "filler")
        target = disk / "run" / "checkpoints" / "last.pt"
        target.parent.mkdir(parents=True)
        with pytest.raises(OSError) as raised:
            save_checkpoint(target, {"spec": TINY_SPEC.to_dict(), "model": {"w": torch.zeros(64, 1024)}})
        assert raised.value.errno == errno.ENOSPC
        assert describe_os_error(raised.value) == (f"disk full: {target}", RUN_FAILED)
        assert list(target.parent.iterdir()) == []


def test_reproduce_restarts_a_run_killed_before_its_first_checkpoint(tiny: dict, monkeypatch, capsys) -> None:
    monkeypatch.setitem(PRESETS, "tiny", Preset("tiny", TINY_SPEC, 50.0, "a test preset"))
    recipe = paper_recipe(1, 20).replace(seed=0)
    killed = RunDir(tiny["tmp"] / "rep" / "tiny" / "seed-0")
    killed.create("tiny", TINY_SPEC, recipe, {}, {})  # what a run writes before its first epoch ends
    argv = ["reproduce", "--data", tiny["data"], "--archs", "tiny", "--epochs", "1", "--subset", "20",
            "--out", str(tiny["tmp"] / "rep"), "--quiet"]
    assert main(argv) == 0
    assert "starting it over" in capsys.readouterr().out
    assert killed.has_checkpoint() and len(killed.read_metrics()) == 1


def test_reproduce_refuses_a_foreign_folder_before_training_anything(tiny: dict, monkeypatch, capsys) -> None:
    monkeypatch.setitem(PRESETS, "tiny", Preset("tiny", TINY_SPEC, 50.0, "a test preset"))
    foreign = tiny["tmp"] / "rep" / "tiny" / "seed-1"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    argv = ["reproduce", "--data", tiny["data"], "--archs", "tiny", "--seeds", "2", "--epochs", "1",
            "--subset", "20", "--out", str(tiny["tmp"] / "rep"), "--quiet"]
    fails_in_one_line(capsys, argv, USAGE_ERROR, "holds files budgetnet did not write")
    assert not (tiny["tmp"] / "rep" / "tiny" / "seed-0").exists()


@pytest.mark.parametrize("augment", ["offline", "none"])
def test_a_subset_larger_than_the_data_is_refused(augment: str, tiny: dict, capsys) -> None:
    out = tiny["tmp"] / "run"
    fails_in_one_line(capsys, train_argv(tiny, out, "--subset", "5000", "--augment", augment), USAGE_ERROR,
                      "--subset 5000 is more than the 50 training images")
    assert not out.exists()
