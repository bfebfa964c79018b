"""Packed forward with grouped kernels: K runs' layers as one grouped conv / batched matmul / wide norm per layer.

Packed-Ensembles' layout: activations are (B, K·C, ...) — run k owns channels [k·C, (k+1)·C) — so a conv of K runs
is one convolution with groups=K, a BatchNorm / GroupNorm of K runs is one norm over K·C channels (per-channel
statistics never mix runs), and activations, pooling and resizing apply as they are. Linears are batched matmuls
over (K, B, F). Parameters and buffers are the stacked (K, ...) tensors of `stack_module_state`, viewed in place, so
one optimizer, the per-run lr scaling and the in-place BN running-statistic updates act on the same storage as under
vmap. Same numbers as vmap to float tolerance and fewer ops per step (vmap's batch-norm and pooling rules add
reshapes and copies): measured faster on a CPU (docs/benchmarks.md); vmap stays for layers without a grouped
form."""

from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.ghost_bn import normalization_batches, updates_running_stats
from ..layers.norm import LayerNorm2d
from ..layers.residual import ResidualAdd, ResidualBlock, ZeroPadShortcut
from ..layers.scratch_bn import ScratchBatchNorm

# Modules that act on each channel (or element) independently: they take (B, K·C, ...) as they are.
CHANNELWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.AvgPool2d,
               nn.MaxPool2d, nn.Upsample, nn.AdaptiveAvgPool2d)
SUPPORTED = CHANNELWISE + (nn.Conv2d, nn.Linear, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm,
                           nn.LayerNorm, ScratchBatchNorm, ZeroPadShortcut, ResidualAdd)
CONTAINERS = (nn.Sequential, ResidualBlock)  # composed from their children (a residual block's add joins two paths)

Tensors = Dict[str, Tensor]


def unsupported(model: nn.Module) -> Optional[str]:
    """None if every layer of `model` has a grouped form, else the first that has not (vmap packs those)."""
    for name, m in model.named_modules():
        if isinstance(m, CONTAINERS):
            continue
        if not isinstance(m, SUPPORTED) or list(m.children()):
            return f"{name} ({type(m).__name__})"
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            return f"{name} (Flatten over dims {m.start_dim}..{m.end_dim})"
        if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) != 1:
            return f"{name} (LayerNorm over {tuple(m.normalized_shape)})"
    return None


def _flat(t: Optional[Tensor]) -> Optional[Tensor]:
    """A stacked (K, C, ...) tensor as (K·C, ...): a view, so in-place updates reach the stack."""
    return None if t is None else t.view(-1, *t.shape[2:])


def _conv(m: nn.Conv2d, p: Tensors, x: Tensor, k: int) -> Tensor:
    # weight (K, out, in/g, kh, kw) → (K·out, in/g, kh, kw); K·g groups keep every run on its own channels
    return F.conv2d(x, _flat(p["weight"]), _flat(p.get("bias")), m.stride, m.padding, m.dilation, m.groups * k)


def _linear(m: nn.Linear, p: Tensors, x: Tensor, k: int) -> Tensor:
    b = x.shape[0]
    xk = x.view(b, k, -1).transpose(0, 1)  # (K, B, in)
    w = p["weight"].transpose(1, 2)  # (K, in, out)
    y = torch.baddbmm(p["bias"].unsqueeze(1), xk, w) if "bias" in p else torch.bmm(xk, w)  # (K, B, out)
    return y.transpose(0, 1).reshape(b, -1)  # (B, K·out)


def _batch_norm(m: nn.modules.batchnorm._BatchNorm, p: Tensors, x: Tensor, k: int) -> Tensor:
    training = m.training or m.running_mean is None
    # ghost BN (ghost_bn.py): each chunk on its own statistics, cut as the lone module cuts it
    chunks = normalization_batches(m, x) if m.training else [x]
    out = []
    for i, chunk in enumerate(chunks):  # the lone module's order and running-statistics updates (bn.ghost_stats)
        update = not m.training or updates_running_stats(m, i)
        if m.training and m.track_running_stats and update:
            p["num_batches_tracked"].add_(1)  # kept in step with a lone run's module (momentum is never None here)
        mean, var = (_flat(p.get("running_mean")), _flat(p.get("running_var"))) if update else (None, None)
        out.append(F.batch_norm(chunk, mean, var, _flat(p.get("weight")), _flat(p.get("bias")), training,
                                0.0 if m.momentum is None else m.momentum, m.eps))
    return out[0] if len(out) == 1 else torch.cat(out)


def _group_norm(m: nn.GroupNorm, p: Tensors, x: Tensor, k: int) -> Tensor:
    # groups are consecutive channel blocks of one sample: K runs' G groups are the K·G groups of K·C channels
    return F.group_norm(x, m.num_groups * k, _flat(p.get("weight")), _flat(p.get("bias")), m.eps)


def _layer_norm(m: nn.LayerNorm, p: Tensors, x: Tensor, k: int) -> Tensor:
    b = x.shape[0]
    y = F.layer_norm(x.view(b, k, -1), m.normalized_shape, None, None, m.eps)  # (B, K, F): per run, per sample
    if "weight" in p:
        y = y * p["weight"]
    if "bias" in p:
        y = y + p["bias"]
    return y.reshape(b, -1)


def _scratch_bn(m: ScratchBatchNorm, p: Tensors, x: Tensor, k: int) -> Tensor:
    wide = copy.copy(m)  # the same maths over K·C channels; its tensors are the stacked views
    wide._parameters = {n: _flat(p.get(n)) for n in m._parameters}
    wide._buffers = {n: (p[n] if n == "num_batches_tracked" else _flat(p[n])) for n in m._buffers}
    wide.num_features = m.num_features * k
    return wide(x)


def _zero_pad(m: ZeroPadShortcut, p: Tensors, x: Tensor, k: int) -> Tensor:
    b, kc, h, w = x.shape
    y = m(x.reshape(b * k, kc // k, h, w))  # each run's (C, H, W) subsampled and padded alone
    return y.view(b, -1, *y.shape[2:])  # (B, K·C', H', W')


LAYERS: List[Tuple[type, Callable[..., Tensor]]] = [
    (nn.Conv2d, _conv), (nn.Linear, _linear), (nn.modules.batchnorm._BatchNorm, _batch_norm),
    (LayerNorm2d, _group_norm), (nn.GroupNorm, _group_norm), (nn.LayerNorm, _layer_norm),
    (ScratchBatchNorm, _scratch_bn), (ZeroPadShortcut, _zero_pad),
]
Layer = Callable[[Tensor], Tensor]


class GroupedForward:
    """K runs of `base` (a tree of Sequentials and residual blocks on the meta device) whose tensors are
    `params`/`buffers`, stacked (K, ...), called on x: (K, B, ...) per-run inputs or (B, ...) shared by every run;
    returns (K, B, classes). The tree is compiled once into closures over each layer's function and tensor views: a
    step runs no name lookups."""

    def __init__(self, base: nn.Module, params: Tensors, buffers: Tensors, k: int) -> None:
        self.k = k
        self.state = {**params, **buffers}
        self.forward = self._compile(base, "")

    def _tensors(self, prefix: str) -> Tensors:
        return {n[len(prefix):]: t for n, t in self.state.items() if n.startswith(prefix)}

    def _compile(self, m: nn.Module, prefix: str) -> Layer:
        k = self.k
        if isinstance(m, nn.Sequential):
            layers = [self._compile(child, f"{prefix}{name}.") for name, child in m.named_children()]

            def chain(h: Tensor) -> Tensor:
                for layer in layers:
                    h = layer(h)
                return h
            return chain
        if isinstance(m, ResidualBlock):
            pre, branch, shortcut, post = (self._compile(getattr(m, n), f"{prefix}{n}.")
                                           for n in ("pre", "branch", "shortcut", "post"))
            gain = self._tensors(f"{prefix}add.").get("gain")  # SkipInit: (K, 1), one scalar per run

            def block(h: Tensor) -> Tensor:
                h = pre(h)
                r = branch(h)  # (B, K·C, H, W)
                if gain is not None:
                    r = (r.view(r.shape[0], k, -1) * gain.view(1, k, 1)).view(r.shape)
                return post(r + shortcut(h))
            return block
        if isinstance(m, nn.Flatten):
            return lambda h: h.reshape(h.shape[0], -1)  # (B, K·C·H·W): run k's features stay in block k
        fn = next((f for cls, f in LAYERS if isinstance(m, cls)), None)
        if fn is None:  # CHANNELWISE
            return m
        tensors = self._tensors(prefix)
        return lambda h: fn(m, tensors, h, k)

    def __call__(self, x: Tensor, shared_input: bool = False) -> Tensor:
        k = self.k
        if shared_input:
            x = x.unsqueeze(0).expand(k, *x.shape)
        b = x.shape[1]
        h = x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])  # (B, K·C, ...): run k's channels in block k
        return self.forward(h).view(b, k, -1).transpose(0, 1)  # (K, B, classes)
