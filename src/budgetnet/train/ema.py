"""Weight averaging: an exponential moving average evaluated in place of the raw weights, and Lookahead."""

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


LOOKAHEAD_DECAY = 0.95  # per optimiser step, as airbench: a sync every k steps keeps 0.95**k of the slow weights


class Lookahead:
    """airbench's form of Lookahead (Zhang et al., 2019): every `period` steps the slow weights move towards the
    trained ones, and training goes on from the slow weights. The share they keep grows from 0 at the start to
    LOOKAHEAD_DECAY**period at the end as (step / total)**3, and the last step ends on the slow weights."""

    def __init__(self, source: nn.Module, period: int) -> None:
        self.period = period  # optimiser steps between syncs
        self.source = source  # the plain model being trained (not a DDP or compiled wrapper)
        self.slow = {name: p.detach().clone() for name, p in source.named_parameters()}

    def kept_share(self, step: int, total: int) -> float:
        """The share of the slow weights a sync after `step` of `total` steps keeps."""
        return LOOKAHEAD_DECAY ** self.period * (step / total) ** 3

    @torch.no_grad()
    def after_step(self, step: int, total: int) -> None:
        """Sync after optimiser step `step` (1-based) of `total`, if one is due; the last step takes the slow
        weights, unless the run was too short to sync before it (their copy would still be the initial weights)."""
        last = step >= total
        if (step % self.period and not last) or (last and total <= self.period):
            return
        kept = 1.0 if last else self.kept_share(step, total)
        slow = list(self.slow.values())
        fast = [p.detach() for p in self.source.parameters()]
        torch._foreach_lerp_(slow, fast, 1 - kept)
        torch._foreach_copy_(fast, slow)

    def state_dict(self) -> dict[str, Any]:
        """The slow weights by parameter name, tensors only."""
        return {"slow": dict(self.slow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what `state_dict` returned; a ValueError if its names differ from the model's."""
        slow = state.get("slow")
        if not isinstance(slow, dict) or set(slow) != set(self.slow):
            raise ValueError("its lookahead weights do not match the model's parameters")
        for name, tensor in slow.items():
            self.slow[name].copy_(tensor)
