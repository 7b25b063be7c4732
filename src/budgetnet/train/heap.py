"""Keep freed memory in the process for reuse while training on a CPU.

glibc's malloc serves every block above 32 MB with its own mmap and hands it back to the kernel when freed.
A CPU training step allocates and frees many such blocks (one activation or gradient of a batch of 512 at 64
channels x 32 x 32 in fp32 is 134 MB), so every step faults their pages back in and the kernel zeroes them
again. With mmap and heap trimming turned off, freed blocks stay in the heap and the next step reuses them:
benchmarks/heap_speed.py trained resnet-cpu 9-17% faster in bf16 and resnet-cpu-small 8-46% faster in fp32
over a few steps, after a test pass too, and whole cpu-small runs 4-10% faster per epoch; a whole bf16 run of
the cpu recipe, on a slower host, was not faster than the earlier ones (docs/benchmarks.md). It costs 3-6% more
peak memory; the process only gives its memory back when it exits.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # the largest threshold mallopt takes: free heap space is never returned


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from the heap and never trim it, for this whole process.

    Returns whether it did: False (and nothing changes) where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the symbols this process already has loaded
        libc.gnu_get_libc_version  # glibc only: musl's mallopt accepts everything and does nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
