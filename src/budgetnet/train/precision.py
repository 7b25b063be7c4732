"""Which precision a run trains in: bf16 autocast only where the hardware runs bf16 natively."""

from __future__ import annotations

import torch

from budgetnet.hardware import NATIVE_BF16_FLAGS, cpu_flags, native_bf16


def choose_precision(requested: str, device: torch.device, flags: frozenset[str] | None = None,
                     cuda_bf16: bool | None = None) -> tuple[str, str | None, str]:
    """(precision, warning or None, why) for `requested` ("auto", "fp32" or "bf16") on `device`.

    `flags` (the CPU's) and `cuda_bf16` default to this machine's; tests pass their own.
    """
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported() if cuda_bf16 is None else cuda_bf16
        where = "this GPU " + ("supports" if native else "does not support") + " bf16"
    else:
        found = native_bf16(cpu_flags() if flags is None else flags)
        native = bool(found)
        where = f"this CPU has {', '.join(found)}" if native else f"this CPU has none of {', '.join(NATIVE_BF16_FLAGS)}"
    if requested == "auto":
        return ("bf16" if native else "fp32"), None, f"auto: {where}"
    warning = None
    if requested == "bf16" and not native:
        warning = f"bf16 was asked for, but {where}: bf16 runs several times slower than fp32 here"
    return requested, warning, f"asked for; {where}"


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast on `device` for precision "bf16"; a no-op context for "fp32"."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
