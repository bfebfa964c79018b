"""Paired initialization: each conv/linear layer draws its init from a generator derived from (seed, layer name)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..seeding import generator


@torch.no_grad()
def paired_init_(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialize every Conv2d/Linear exactly like PyTorch's default (kaiming_uniform(a=√5), bias U(±1/√fan_in)),
    but from a generator keyed by (seed, qualified layer name). Adding a norm layer, dropping a bias or changing
    any other layer therefore cannot shift this layer's weights: variants of one model start from identical
    weights for a given seed, which makes seed-matched differences paired comparisons."""
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        g = generator(seed, "init", name)
        nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=g)  # weight drawn first, always
        if module.bias is not None:
            fan_in = module.weight[0].numel()  # in_features, or in_channels * kh * kw
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(module.bias, -bound, bound, generator=g)
    return model
