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
    weights for a given seed, which makes seed-matched differences paired comparisons. A layer may ask for some of
    its rows to be scaled (`init_scale_rows`), and a module with `paired_init_(generator)` initializes its own
    parameters from its own keyed generator (a ViT's class token and positions)."""
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        g = generator(seed, "init", name)
        nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=g)  # weight drawn first, always
        if module.bias is not None:
            fan_in = module.weight[0].numel()  # in_features, or in_channels * kh * kw
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(module.bias, -bound, bound, generator=g)
        rows = getattr(module, "init_scale_rows", None)  # (start, stop, factor): DeepNorm's β (layers/transformer.py)
        if rows is not None:
            module.weight[rows[0]:rows[1]].mul_(rows[2])
    for name, module in model.named_modules():  # parameters of other modules that draw their own start (ViT tokens)
        if hasattr(module, "paired_init_"):
            module.paired_init_(generator(seed, "init", name))
    return model
