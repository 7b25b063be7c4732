"""Keeping freed memory for reuse during CPU training (budgetnet.train.heap)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# In a fresh interpreter, since the setting holds for the whole process: how many bytes glibc serves by mmap
# for a 64 MB tensor before and after keep_freed_memory.
MAPPED_BYTES = """
import ctypes
import torch
from budgetnet.train.heap import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2

def mapped_while_held():
    block = torch.empty(64 << 20, dtype=torch.uint8)
    return libc.mallinfo2().hblkhd

before = mapped_while_held()
kept = keep_freed_memory()
print(before, kept, mapped_while_held())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt and mallinfo2 are glibc's")
def test_large_blocks_come_from_the_heap_once_freed_memory_is_kept():
    done = subprocess.run([sys.executable, "-c", MAPPED_BYTES], capture_output=True, text=True, check=True)
    before, kept, after = done.stdout.split()
    assert int(before) >= 64 << 20  # glibc's default: a block this large is its own mapping
    assert kept == "True"
    assert int(after) < 64 << 20  # now from the heap, where a freed block is reused without page faults
