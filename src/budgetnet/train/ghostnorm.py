"""Ghost BatchNorm: in training, every group of a few images is normalised by its own statistics.

Hoffer et al. (2017) normalise large batches in small "ghost" batches; David Page's ResNet-9 trains at batch
512 with ghost batches of 32. The running statistics still follow the whole batch, so evaluation, checkpoints
and exports see a plain BatchNorm2d with the same parameters and buffers.
"""

from __future__ import annotations

import torch
from torch import nn


class GhostBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training forward normalises each run of `ghost_size` images on its own."""

    def __init__(self, source: nn.BatchNorm2d, ghost_size: int) -> None:
        factory = {"device": source.running_mean.device} if source.running_mean is not None else {}
        super().__init__(source.num_features, source.eps, source.momentum, source.affine,
                         source.track_running_stats, **factory)
        self.load_state_dict(source.state_dict())
        self.ghost_size = ghost_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or len(x) <= self.ghost_size:
            return super().forward(x)
        outputs, means, variances = [], [], []
        parts = x.split(self.ghost_size)
        for part in parts:
            out, mean, invstd = torch.native_batch_norm(part, self.weight, self.bias, None, None, True, 0.0, self.eps)
            outputs.append(out)
            means.append(mean.detach())
            variances.append(invstd.detach().pow(-2) - self.eps)  # the part's biased variance
        if self.track_running_stats:
            self._track(torch.stack(means), torch.stack(variances), len(parts[0]), len(parts[-1]), x[0, 0].numel())
        return torch.cat(outputs)

    @torch.no_grad()
    def _track(self, means: torch.Tensor, variances: torch.Tensor, first: int, last: int, pixels: int) -> None:
        """Update the running statistics with the whole batch's, pooled from its parts' (fp32, no extra pass).

        Every part holds `first` images but the last, which holds `last`; the weights are built on the
        statistics' device from these Python numbers, so a GPU step makes no host copy or sync here."""
        images = first * (len(means) - 1) + last
        weights = torch.full((len(means), 1), float(first), dtype=means.dtype, device=means.device)
        weights[-1] = float(last)
        weights /= images
        mean = (weights * means).sum(0)
        biased = (weights * (variances + (means - mean) ** 2)).sum(0)
        total = images * pixels
        self.num_batches_tracked += 1
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(biased * total / max(total - 1, 1), factor)


def use_ghost_batch_norm(model: nn.Module, ghost_size: int) -> None:
    """Replace every BatchNorm2d in `model` by a GhostBatchNorm2d with the same state; call it before the
    optimiser (or anything else) takes the model's parameters."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.BatchNorm2d:
                setattr(parent, name, GhostBatchNorm2d(child, ghost_size))
