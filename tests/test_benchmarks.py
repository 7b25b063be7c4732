"""The benchmark scripts still run, in their smallest modes (their figures are not checked here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from train_fixtures import TINY_SPEC, write_binary_cifar

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(tmp_path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BUDGETNET_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_gpu_check_tiny_mode_prints_the_table(tmp_path):
    write_binary_cifar(tmp_path / "data", n_per_batch=64, n_test=40)
    result = _run(tmp_path, str(BENCHMARKS / "gpu_check.py"), "--tiny", "--device", "cpu", "--data", "data",
                  "--out", "check")
    assert result.returncode == 0, result.stderr
    for line in ("store build", "paper recipe (batch 32, bf16)", "fast: time to 94.00%", "fast: time to 95.67%",
                 "fast: final test accuracy", "official files (lossless)"):
        assert line in result.stdout
    report = json.loads((tmp_path / "check" / "gpu_check.json").read_text())
    assert report["store_samples"] == 6 * 256 and report["tiny"] is True
    assert report["paper_images_per_s"] > 0 and 0 <= report["fast_final_test_acc"] <= 1


def test_train_throughput_json(tmp_path):
    TINY_SPEC.save(tmp_path / "tiny.json")
    result = _run(tmp_path, str(BENCHMARKS / "train_throughput.py"), "--arch", "tiny.json", "--steps", "2",
                  "--warmup", "1", "--batches", "8", "16", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["speedup"] == report["results"]["16"]["train_ratio"] > 0


def test_timed_run_records_wall_time_load_and_hardware(tmp_path):
    result = _run(tmp_path, str(BENCHMARKS / "timed_run.py"), "--record", "t.json", "--every", "0.05", "--",
                  sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(3)")
    assert result.returncode == 3, result.stderr  # the command's own exit code
    record = json.loads((tmp_path / "t.json").read_text())
    assert record["exit_code"] == 3 and 0.3 <= record["wall_seconds"] < 30
    assert record["load_samples"] and record["load_max"] >= record["load_mean"] >= 0
    assert record["cpu"] and "bf16" in record["cpu_kind"] and record["torch_threads"] >= 1
    assert record["conv3x3_gflops_before"] > 0 and record["conv3x3_gflops_after"] > 0


def test_cpu_speed_json(tmp_path):
    result = _run(tmp_path, str(BENCHMARKS / "cpu_speed.py"), "--json")
    assert result.returncode == 0, result.stderr
    speed = json.loads(result.stdout)
    assert speed["torch_threads"] == 1  # OMP_NUM_THREADS=1 in these runs
    assert speed["conv3x3_gflops"] == speed["conv3x3_gflops_1_thread"] > 0 and speed["thread_scaling"] == 1.0


def test_bn_recalibration_compares_saved_and_recomputed_statistics_on_held_out_images(tmp_path):
    write_binary_cifar(tmp_path / "data", n_per_batch=20, n_test=10)
    TINY_SPEC.save(tmp_path / "tiny.json")
    trained = _run(tmp_path, "-m", "budgetnet", "train", "--arch", "tiny.json", "--recipe", "cpu", "--epochs", "1",
                   "--batch-size", "16", "--val-split", "12", "--data", "data", "--out", "run", "--quiet")
    assert trained.returncode == 0, trained.stderr
    result = _run(tmp_path, str(BENCHMARKS / "bn_recalibration.py"), "run", "--data", "data", "--images", "40",
                  "--json")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert report["val_images"] == 12 and report["recalibration_images"] == 40
    saved, recomputed = report["as saved"], report["recomputed"]
    for variant in (saved, recomputed, report["recomputed, shifted"]):
        assert 0 <= variant["single_view"] <= 1 and 0 <= variant["flip_pair"] <= 1
    assert recomputed["loss"] != saved["loss"]  # new statistics change the outputs
    plain = _run(tmp_path, str(BENCHMARKS / "bn_recalibration.py"), "run", "--data", "data", "--images", "40")
    assert "flip-pair gain of recomputed statistics" in plain.stdout, plain.stderr


def test_bn_recalibration_refuses_a_missing_run_in_one_line(tmp_path):
    write_binary_cifar(tmp_path / "data", n_per_batch=4, n_test=4)
    result = _run(tmp_path, str(BENCHMARKS / "bn_recalibration.py"), "no-such-run", "--data", "data")
    assert result.returncode == 2 and "no-such-run" in result.stderr and "Traceback" not in result.stderr


def test_recipe_speed_compares_variants_with_the_named_recipe(tmp_path):
    TINY_SPEC.save(tmp_path / "tiny.json")
    result = _run(tmp_path, str(BENCHMARKS / "recipe_speed.py"), "--arch", "tiny.json", "--steps", "1", "--rounds",
                  "1", "--variant", "optimizer=sgd", "--variant", "low_res_epochs=0")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if "training images/s" in line]
    assert [row[-1] for row in rows] == ["recipe", "optimizer=sgd", "low_res_epochs=0"]
    assert rows[0][3] == "1.000x" and all(float(row[0]) > 0 for row in rows)


def test_heap_speed_compares_both_sides_in_each_epoch_kind(tmp_path):
    TINY_SPEC.save(tmp_path / "tiny.json")
    result = _run(tmp_path, str(BENCHMARKS / "heap_speed.py"), "--arch", "tiny.json", "--steps", "1", "--rounds", "1",
                  "--eval-images", "64")
    assert result.returncode == 0, result.stderr
    row = r"^ *(.+): defaults +([\d.]+) \( *(\d+) MB\)  kept +([\d.]+) \( *(\d+) MB\)  ([\d.]+)x$"
    rows = re.findall(row, result.stdout, re.MULTILINE)
    # cpu-small's low-res epochs, then a full-size one, then that one again after a test pass
    assert [r[0] for r in rows] == ["24 px", "full", "full, after a test pass"]
    assert all(float(r[1]) > 0 and float(r[3]) > 0 for r in rows)
    test_pass = re.search(r"^test pass over 64 images: defaults ([\d.]+) s, kept ([\d.]+) s$", result.stdout, re.M)
    assert test_pass  # seconds, which a 64-image pass of a tiny network may round to 0.00
    last = result.stdout.splitlines()[-1]
    assert last.startswith("peak resident memory: defaults") and last.endswith(" MB")


def test_heap_speed_refuses_zero_steps_rounds_or_test_images_in_one_line(tmp_path):
    for flag in ("--steps", "--rounds", "--eval-images"):
        result = _run(tmp_path, str(BENCHMARKS / "heap_speed.py"), flag, "0")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.splitlines()[-1].endswith(f"argument {flag}: expected a positive integer, got '0'")


def test_recipe_speed_refuses_a_bad_variant_in_one_line(tmp_path):
    for variant in ("no_such_field=1", "optimizer=adam", "low_res_epochs=5"):
        result = _run(tmp_path, str(BENCHMARKS / "recipe_speed.py"), "--variant", variant)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert variant.split("=")[0] in result.stderr and "Traceback" not in result.stderr


def test_recipe_and_heap_speed_refuse_an_unknown_name_in_one_line(tmp_path):
    for script in ("recipe_speed.py", "heap_speed.py"):
        for flag in ("--arch", "--recipe"):
            result = _run(tmp_path, str(BENCHMARKS / script), flag, "no-such-name")
            assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
            assert "no-such-name" in result.stderr and "Traceback" not in result.stderr
