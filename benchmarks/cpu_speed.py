"""How fast this machine's cores are right now: fp32 3x3-conv GFLOP/s on 1 thread and on all of torch's threads.

    python benchmarks/cpu_speed.py [--json]

Two machines of the same kind can differ by 2x (a shared host, a lower clock), and the load average
inside a virtual machine does not show it. So every published speed figure comes with this one,
taken on the same machine just before: `benchmarks/timed_run.py` records it with each run. The conv
is the shape that dominates budgetnet's CPU networks (256 channels at 16x16, batch 128, channels_last).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from budgetnet.hardware import cpu_flags, cpu_kind, cpu_model

BATCH, CHANNELS, SIDE = 128, 256, 16
CONV_FLOP = 2 * BATCH * CHANNELS * CHANNELS * 9 * SIDE * SIDE  # one 3x3 'same' conv, forward


def conv_gflops(threads: int, repeats: int = 6) -> float:
    """fp32 GFLOP/s of the 3x3 conv on `threads` threads (the best of `repeats` timed calls, after one warm-up)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(BATCH, CHANNELS, SIDE, SIDE).to(memory_format=torch.channels_last)
        w = torch.randn(CHANNELS, CHANNELS, 3, 3).to(memory_format=torch.channels_last)
        torch.conv2d(x, w, padding=1)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.conv2d(x, w, padding=1)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return CONV_FLOP / best / 1e9


def measure() -> dict:
    """The machine's identity and its conv speed on one thread and on torch's default thread count."""
    threads = torch.get_num_threads()
    one = conv_gflops(1)
    every = conv_gflops(threads) if threads > 1 else one
    return {"cpu": cpu_model(), "cpu_kind": cpu_kind(cpu_flags()), "torch_threads": threads,
            "conv3x3_gflops_1_thread": round(one, 1), "conv3x3_gflops": round(every, 1),
            "thread_scaling": round(every / one, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    speed = measure()
    if args.json:
        print(json.dumps(speed))
    else:
        print(f"{speed['cpu']} ({speed['cpu_kind']}): fp32 3x3 conv {speed['conv3x3_gflops_1_thread']} GFLOP/s on "
              f"1 thread, {speed['conv3x3_gflops']} on {speed['torch_threads']} ({speed['thread_scaling']}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
