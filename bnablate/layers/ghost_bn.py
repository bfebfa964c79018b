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


class _GhostMixin:
    ghost: Optional[int]

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C) or (N, C, H, W)
        if not self.training or self.ghost is None or x.shape[0] <= self.ghost:
            return super().forward(x)  # type: ignore[misc]
        self._check_input_dim(x)  # type: ignore[attr-defined]
        out = []
        for chunk in x.split(self.ghost):  # contiguous chunks: samples i·g … (i+1)·g − 1
            factor = 0.0 if self.momentum is None else self.momentum  # type: ignore[attr-defined]
            if self.track_running_stats and self.num_batches_tracked is not None:  # type: ignore[attr-defined]
                self.num_batches_tracked.add_(1)  # type: ignore[attr-defined]
                if self.momentum is None:  # cumulative average over every chunk seen, as torch counts batches
                    factor = 1.0 / float(self.num_batches_tracked)  # type: ignore[attr-defined]
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
