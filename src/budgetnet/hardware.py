"""What this machine is: the CPU's model name and feature flags, and the versions and hardware recorded with every
run and speed figure."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a run is described, not when a flag is checked
    import torch

# CPU flags of native bf16 matrix units (Intel AMX, AVX-512 BF16); without them oneDNN emulates bf16
# and autocast runs several times slower than fp32 (about 7x measured on AMD Zen 3, AVX2 only)
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpuinfo_field(name: str, cpuinfo: str | Path) -> str | None:
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name, as lscpu prints it."""
    return _cpuinfo_field("model name", cpuinfo) or platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo is not readable)."""
    return frozenset((_cpuinfo_field("flags", cpuinfo) or "").split())


def native_bf16(flags: frozenset[str]) -> list[str]:
    """Which of NATIVE_BF16_FLAGS the CPU has."""
    return [f for f in NATIVE_BF16_FLAGS if f in flags]


def cpu_kind(flags: frozenset[str]) -> str:
    """A short description of the CPU's bf16 support, recorded with every speed figure."""
    native = native_bf16(flags)
    return f"native bf16 ({', '.join(native)})" if native else "no native bf16 (fp32 is the fast path)"


def environment(device: torch.device, deterministic: bool = False) -> dict[str, Any]:
    """Versions and hardware that produced a run (env.json); no hostname or user name."""
    import numpy
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(terse=True),
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_kind": cpu_kind(cpu_flags()),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "deterministic": deterministic,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env
