"""A from-scratch BatchNorm written for clarity, numerically matching nn.BatchNorm1d/2d."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn


class ScratchBatchNorm(nn.Module):
    """Batch normalization over every dim except channels (dim 1), for (N, C) or (N, C, H, W) inputs.

    Training: normalize with the batch mean and the *biased* variance (divide by m, the number of values per
    channel), and update running statistics with the *unbiased* variance (divide by m - 1), as PyTorch does.
    Momentum follows PyTorch's convention: running = (1 - momentum) * running + momentum * batch_stat
    (Keras' momentum=0.99 is PyTorch's 0.01). momentum=None keeps a cumulative average instead.
    Eval: normalize with the running statistics.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))  # gamma, (C,)
            self.bias = nn.Parameter(torch.zeros(num_features))  # beta, (C,)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batches counted: the state after construction (as torch's BN)."""
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"expected (N, {self.num_features}) or (N, {self.num_features}, H, W), got {tuple(x.shape)}")
        reduce_dims = [0] if x.dim() == 2 else [0, 2, 3]
        shape = [1, -1] + [1] * (x.dim() - 2)  # broadcast (C,) over (N, C, ...)
        if self.training:
            m = x.numel() // x.shape[1]  # values per channel in this batch
            if m <= 1:
                raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
            mean = x.mean(dim=reduce_dims)
            var = x.var(dim=reduce_dims, unbiased=False)  # biased: what normalizes the batch
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * (m / (m - 1))  # unbiased: what estimates the population variance
                self.running_mean.mul_(1 - factor).add_(factor * mean)
                self.running_var.mul_(1 - factor).add_(factor * unbiased)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
