"""Ghost batch normalization (Hoffer et al. 2017): in training, BN normalizes each contiguous chunk of `ghost` samples
of the batch with that chunk's own statistics — the normalization batch set apart from the optimization batch (Wu &
Johnson 2021). A batch of k·g samples with ghost size g is what k devices with unsynchronised (local) BN compute.

Subclasses of torch's BatchNorm1d/2d (so every BN-aware part of bnablate — PreciseBN, fine-tuning's freeze modes,
the pack planner's checks — treats them as BN); each chunk goes through the same `F.batch_norm` call torch's forward
makes, so a ghost size equal to the batch is bit-for-bit plain BN. Eval mode uses the running statistics, as BN does.
How the running statistics are kept is `ghost_stats` (bn.ghost_stats):
- "chunk": updated once per chunk, in order (k successive BN calls' worth per step, as one device running its k
  micro-batches would); an epoch's last, smaller batch splits into full chunks and one remainder chunk.
- "step": updated once per step from the first chunk alone — what rank 0 of a data-parallel run holds (DDP broadcasts
  rank 0's buffers) — and every batch, the epoch's last smaller one too, is cut into `chunks` near-equal contiguous
  parts (torch.tensor_split, as DDP shares a batch among its processes; `set_ghost_chunks` sets the count)."""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def count_batch(bn: nn.modules.batchnorm._BatchNorm) -> float:
    """Count one normalization batch in bn.num_batches_tracked and return its weight in the running statistics:
    bn.momentum, or 1/count for a cumulative average (momentum None) — the factor torch's BatchNorm forward uses.
    Ghost BN counts each chunk, Batch Renorm each step."""
    bn.num_batches_tracked.add_(1)
    return bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)


GHOST_STATS = {
    "chunk": "ghost BN's running statistics updated once per chunk at the BN momentum (k updates per step of k "
             "chunks); the epoch's last, smaller batch is full chunks and a remainder",
    "step": "updated once per optimization step from the first chunk — what rank 0 of a data-parallel run holds — "
            "with every batch, the last smaller one too, cut into near-equal chunks as the processes share it: ghost "
            "BN then equals data-parallel BN, running statistics included",
}


def set_ghost_chunks(model: nn.Module, batch_size: int) -> None:
    """Tell every ghost layer of `model` how many chunks a full training batch of `batch_size` samples (a process's
    share in a data-parallel run) makes: ⌈batch_size / ghost⌉, the processes that would share it. Under ghost_stats
    "step" every batch is cut into that many parts, so the epoch's last, smaller batch splits as it would over the
    processes; unset, a batch of n is cut into ⌈n / ghost⌉ (the same for full batches)."""
    for m in model.modules():
        if getattr(m, "ghost", None) is not None:
            m.chunks = -(-int(batch_size) // int(m.ghost))


def normalization_batches(m: nn.Module, x: Tensor) -> List[Tensor]:
    """The contiguous chunks of training batch x (N, ...) that layer m (ghost size m.ghost, m.ghost_stats) normalizes
    on their own: the whole batch without ghost batches; "chunk": samples i·g … (i+1)·g − 1 and a remainder; "step":
    m.chunks near-equal parts (torch.tensor_split, DDP's sharing), never so many that a part has one sample."""
    ghost = getattr(m, "ghost", None)
    if ghost is None:
        return [x]
    if getattr(m, "ghost_stats", "chunk") == "step":
        k = getattr(m, "chunks", None) or -(-x.shape[0] // ghost)
        # no part of one sample: training's last batch is checked before training (check_last_batch), while the last
        # batch of a train-mode evaluation (bn.eval_stats=batch) may be smaller
        k = min(k, max(x.shape[0] // 2, 1))
        return list(x.tensor_split(k)) if k > 1 else [x]
    return list(x.split(ghost)) if x.shape[0] > ghost else [x]


def updates_running_stats(m: nn.Module, i: int) -> bool:
    """Whether the i-th normalization batch of a training step moves m's running statistics: each under "chunk", the
    first (rank 0's share) under "step"."""
    return getattr(m, "ghost_stats", "chunk") == "chunk" or i == 0


class _GhostMixin:
    ghost: Optional[int]
    ghost_stats: str

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C) or (N, C, H, W)
        chunks = normalization_batches(self, x) if self.training else [x]  # type: ignore[arg-type]
        if len(chunks) == 1:
            return super().forward(x)  # type: ignore[misc]
        self._check_input_dim(x)  # type: ignore[attr-defined]
        out = []
        for i, chunk in enumerate(chunks):
            # no running statistics to update (track_running_stats=False, or another chunk than the first under
            # "step"): batch_norm without buffers normalizes with the chunk's statistics and keeps nothing
            update = self.track_running_stats and updates_running_stats(self, i)  # type: ignore[attr-defined]
            factor = count_batch(self) if update else 0.0  # type: ignore[arg-type]
            mean, var = (self.running_mean, self.running_var) if update else (None, None)  # type: ignore
            out.append(F.batch_norm(chunk, mean, var, self.weight, self.bias,  # type: ignore[attr-defined]
                                    True, factor, self.eps))  # type: ignore[attr-defined]
        return torch.cat(out)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", ghost_batch_size={self.ghost}, ghost_stats={self.ghost_stats}"  # type: ignore


class GhostBatchNorm1d(_GhostMixin, nn.BatchNorm1d):
    def __init__(self, num_features: int, ghost: Optional[int] = None, ghost_stats: str = "chunk", **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.ghost, self.ghost_stats, self.chunks = ghost, ghost_stats, None


class GhostBatchNorm2d(_GhostMixin, nn.BatchNorm2d):
    def __init__(self, num_features: int, ghost: Optional[int] = None, ghost_stats: str = "chunk", **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.ghost, self.ghost_stats, self.chunks = ghost, ghost_stats, None
