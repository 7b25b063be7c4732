"""An exponential moving average of a model's weights, evaluated in place of the raw weights."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightEMA:
    """Keeps `module`, a copy of `source` whose parameters trail the trained ones by `decay` per step."""

    def __init__(self, source: nn.Module, decay: float) -> None:
        self.decay = decay  # per optimiser step
        self.source = source  # the plain model being trained (not a DDP or compiled wrapper)
        self.module = copy.deepcopy(source).eval().requires_grad_(False)
        self.updates = 0  # steps averaged so far

    @torch.no_grad()
    def update(self) -> None:
        """Move the average one step towards the source's current weights; BN statistics are copied."""
        self.updates += 1
        # early on a plain 0.999 average would be mostly the random init: ramp the decay up instead
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_params = list(self.module.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in self.source.parameters()], 1 - decay)
        for ema_buffer, buffer in zip(self.module.buffers(), self.source.buffers()):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights and the step count, tensors only."""
        return {"module": self.module.state_dict(), "updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what `state_dict` returned."""
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
