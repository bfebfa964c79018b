"""Dynamic Tanh (Zhu et al. 2025, "Transformers without Normalization"): DyT(x) = γ · tanh(α·x) + β, an elementwise
replacement for a norm layer with one learnable scalar α (initialised to variant.dyt_alpha0, the paper's default
0.5; Zhu et al. tune it per model) and per-feature γ, β. Written by hand because torch has no DyT layer (13 lines)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

DYT_ALPHA0 = 0.5  # the paper's default α₀ (variant.dyt_alpha0's default and neutral value)


class DyT(nn.Module):
    """DyT over the last dimension (features of (N, D) or tokens (N, T, D)); channel_dim=1 for conv maps (N, C, H, W)."""

    def __init__(self, num_features: int, alpha_init: float = DYT_ALPHA0, affine: bool = True,
                 channel_dim: int = -1) -> None:
        super().__init__()
        self.num_features, self.channel_dim = num_features, channel_dim
        self.alpha = nn.Parameter(torch.full((1,), float(alpha_init)))
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        y = torch.tanh(self.alpha * x)
        if self.weight is None:
            return y
        shape = [-1] + [1] * (x.dim() - 2) if self.channel_dim == 1 else [-1]  # γ, β along the feature axis
        return y * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, alpha_init={float(self.alpha):.3g}, channel_dim={self.channel_dim}"


class DyT2d(DyT):
    """DyT on conv maps (N, C, H, W): per-channel γ, β."""

    def __init__(self, num_features: int, alpha_init: float = DYT_ALPHA0, affine: bool = True) -> None:
        super().__init__(num_features, alpha_init, affine, channel_dim=1)
