"""Run one command and record what a published training figure needs: wall time, load average, hardware.

    python benchmarks/timed_run.py --record runs/cpu.timing.json -- budgetnet train --recipe cpu --data ../shared/cifar10

Samples the 1-minute load average every `--every` seconds while the command runs (a figure measured on a
busy machine is 2-30x off on these 2-core machines, so the record says how quiet it was), and writes the
command, its exit code, the wall time from its start to its end, the load samples and their mean and
maximum, the CPU's model name and bf16 kind, core count, torch version and thread count as JSON, with the
machine's fp32 conv speed (`cpu_speed.py`) measured just before and just after the command: a host shared
with other virtual machines is slower without the load average showing it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model
from cpu_speed import measure as measure_cpu_speed


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def run_timed(command: list[str], every: float) -> dict:
    """Run `command`, sampling the load average meanwhile; its output goes straight to this terminal."""
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            samples.append((round(time.perf_counter() - start, 1), load_average()))

    sampler = threading.Thread(target=sample, daemon=True)
    speed_before = measure_cpu_speed()
    load_before = load_average()
    start = time.perf_counter()
    sampler.start()
    code = subprocess.call(command)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    speed_after = measure_cpu_speed()
    loads = [load for _, load in samples] or [load_before]
    return {
        "command": command,
        "exit_code": code,
        "wall_seconds": wall,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() - wall)),
        "load_before": load_before,
        "load_mean": sum(loads) / len(loads),
        "load_max": max(loads),
        "load_samples": samples,
        "cpu": cpu_model(),
        "cpu_kind": cpu_kind(cpu_flags()),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or torch.get_num_threads(),
        "python": platform.python_version(),
        "conv3x3_gflops_before": speed_before["conv3x3_gflops"],
        "conv3x3_gflops_after": speed_after["conv3x3_gflops"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", required=True, help="where to write the JSON record")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between load-average samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to time after --")
    record = run_timed(command, args.every)
    Path(args.record).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wall {record['wall_seconds'] / 60:.1f} min, load average mean {record['load_mean']:.2f} "
          f"max {record['load_max']:.2f}, conv {record['conv3x3_gflops_before']}/{record['conv3x3_gflops_after']} "
          f"GFLOP/s before/after, {record['cpu']} ({record['cpu_kind']}) -> {args.record}", file=sys.stderr)
    return record["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
