"""Muon: momentum SGD whose conv-filter steps are orthogonalised, as in Keller Jordan's airbench94_muon.

Each filter bank (a conv weight seen as an out x (in * kh * kw) matrix) is held at a fixed norm, sqrt(out),
and stepped by its momentum with the singular values pushed towards 1 by a Newton-Schulz iteration. Every
filter is followed by a BatchNorm, so its scale does not matter and the norm takes weight decay's place;
the step's size is then a relative change, the same for every layer. All other parameters (BatchNorm,
the classifier) take plain SGD steps with weight decay.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

# The quintic iteration's coefficients (Jordan, 2024): chosen for the steepest slope at 0 (3.4 per step), so
# that three steps lift singular values from a few percent of the norm to about 0.7-1.2, rather than
# converging exactly to 1; much smaller ones (rare in a momentum of many gradients) stay smaller.
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)
NEWTON_SCHULZ_STEPS = 3  # airbench94_muon's count; each is 2 matmuls of the bank's size and one of its Gram
NORM_EPS = 1e-7  # keeps a zero update (a filter bank that got no gradient) at zero


def orthogonalise(matrix: Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> Tensor:
    """`matrix` (2-D) with its singular vectors kept and its singular values moved near 1, in float32."""
    x = matrix.float() / (matrix.norm() + NORM_EPS)  # every singular value now at most 1
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T  # the Gram matrix of the short side is the cheaper one
    a, b, c = NEWTON_SCHULZ
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """SGD with momentum (heavy-ball or Nesterov, no dampening, PyTorch's form); the parameters of groups
    with `orthogonal` set are filter banks, held at norm sqrt(out channels) and moved by orthogonalised
    steps of relative size lr, without weight decay."""

    def __init__(self, groups: list[dict[str, Any]], lr: float, momentum: float, nesterov: bool) -> None:
        super().__init__(groups, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=0.0,
                                      orthogonal=False))

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """One step for every parameter that has a gradient."""
        for group in self.param_groups:
            momentum, lr = group["momentum"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] and not group["orthogonal"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buffer = state["momentum_buffer"].mul_(momentum).add_(grad)
                update = grad.add(buffer, alpha=momentum) if group["nesterov"] else buffer
                if group["orthogonal"]:
                    p.mul_(math.sqrt(p.shape[0]) / (p.norm() + NORM_EPS))
                    update = orthogonalise(update.reshape(len(update), -1)).view_as(p).to(p.dtype)
                p.add_(update, alpha=-lr)
