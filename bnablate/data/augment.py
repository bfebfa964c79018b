"""Tensor-level augmentation for a whole batch at once: random crop (zero padding 4) + horizontal flip."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

PAD = 4


def augment_batch(x: Tensor, generator: torch.Generator) -> Tensor:
    """x: (B, C, H, W) → same shape. Each sample gets its own crop offset in [0, 2·PAD]² and a coin-flip mirror; all
    randomness comes from `generator` (on x's device), so a given generator state gives identical output."""
    b, c, h, w = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))  # (B, C, H+8, W+8), zeros outside the image
    dy = torch.randint(0, 2 * PAD + 1, (b,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * PAD + 1, (b,), generator=generator, device=x.device)
    flip = torch.rand(b, generator=generator, device=x.device) < 0.5
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # (B, H) source row per output row
    cols = dx[:, None] + torch.arange(w, device=x.device)[None]  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # mirrored samples read columns right to left
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
