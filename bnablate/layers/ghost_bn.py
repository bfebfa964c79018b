"""Ghost batch normalization (Hoffer et al. 2017): in training, BN normalizes each contiguous chunk of `ghost` samples
of the batch with that chunk's own statistics — the normalization batch set apart from the optimization batch (Wu &
Johnson 2021). A batch of k·g samples with ghost size g is what k devices with unsynchronised (local) BN compute.

Subclasses of torch's BatchNorm1d/2d (so every BN-aware part of bnablate — PreciseBN, fine-tuning's freeze modes,
the pack planner's checks — treats them as BN); each chunk goes through the same `F.batch_norm` call torch's forward
makes, so a ghost size equal to the batch is bit-for-bit plain BN. The running statistics are updated once per chunk,
in order (k successive BN calls' worth per step, as one device running its k micro-batches would); an epoch's last,
smaller batch splits into full chunks and one remainder chunk. Eval mode uses the running statistics, as BN does."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def count_batch(bn: nn.modules.batchnorm._BatchNorm) -> float:
    """Count one normalization batch in bn.num_batches_tracked and return its weight in the running statistics:
    bn.momentum, or 1/count for a cumulative average (momentum None) — the factor torch's BatchNorm forward uses.
    Ghost BN counts each chunk, Batch Renorm each step."""
    bn.num_batches_tracked.add_(1)
    return bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)


class _GhostMixin:
    ghost: Optional[int]

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C) or (N, C, H, W)
        if not self.training or self.ghost is None or x.shape[0] <= self.ghost:
            return super().forward(x)  # type: ignore[misc]
        self._check_input_dim(x)  # type: ignore[attr-defined]
        out = []
        for chunk in x.split(self.ghost):  # contiguous chunks: samples i·g … (i+1)·g − 1
            # no running statistics to update (track_running_stats=False): batch_norm ignores the factor
            factor = count_batch(self) if self.track_running_stats else 0.0  # type: ignore[arg-type,attr-defined]
            out.append(F.batch_norm(chunk, self.running_mean, self.running_var, self.weight, self.bias,  # type: ignore
                                    True, factor, self.eps))  # type: ignore[attr-defined]
        return torch.cat(out)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", ghost_batch_size={self.ghost}"  # type: ignore[misc]


class GhostBatchNorm1d(_GhostMixin, nn.BatchNorm1d):
    def __init__(self, num_features: int, ghost: Optional[int] = None, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.ghost = ghost


class GhostBatchNorm2d(_GhostMixin, nn.BatchNorm2d):
    def __init__(self, num_features: int, ghost: Optional[int] = None, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.ghost = ghost
