"""Norm-layer factory (timm's create_norm style): `get_norm_layer(name, kind)` → class, `create_norm_layer` → instance."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from torch import nn

from ..registry import Registry
from .batch_renorm import BatchRenorm1d, BatchRenorm2d
from .dyt import DYT_ALPHA0, DyT, DyT2d
from .ghost_bn import GhostBatchNorm1d, GhostBatchNorm2d
from .scratch_bn import ScratchBatchNorm

# kind is "conv" (inputs (N, C, H, W)) or "linear" (inputs (N, C)); a norm name maps to one class per kind.
NORMS: Registry[Dict[str, Callable[..., nn.Module]]] = Registry("norm")

# Norms that use batch statistics in training (so a training batch of one sample is meaningless).
BATCH_STAT_NORMS = ("batch", "scratch", "batch_renorm")
GHOST_NORMS = ("batch", "batch_renorm")  # the norms bn.ghost_batch_size can split (ghost_bn.py, batch_renorm.py)
# Their module classes: what PreciseBN re-estimates and the fine-tuning modes freeze.
BATCH_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, ScratchBatchNorm)


class LayerNorm2d(nn.GroupNorm):
    """LayerNorm over (C, H, W) of each sample with a per-channel affine: GroupNorm with a single group."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(1, num_channels, eps=eps, affine=affine)


class GroupNormC(nn.GroupNorm):
    """GroupNorm taking the channel count first, so every norm class is built as cls(num_features, ...)."""

    def __init__(self, num_channels: int, groups: int = 8, eps: float = 1e-5, affine: bool = True) -> None:
        if num_channels % groups:
            raise ValueError(f"group norm needs channels divisible by groups: {num_channels} channels, {groups} groups "
                             f"(set variant.groups to a divisor of {num_channels})")
        super().__init__(groups, num_channels, eps=eps, affine=affine)


class TokenNorm(nn.Module):
    """A (N, C) norm applied to transformer tokens (N, T, D): for BN, statistics over batch × tokens per channel, as
    BN-in-transformer papers define it (Shen et al. 2020; Yao et al. 2021)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):  # (N, T, D) → (N·T, D) → the norm → (N, T, D)
        return self.inner(x.reshape(-1, x.shape[-1])).view(x.shape)


def _tokens(cls: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """The token form of a (N, C) norm class: built with the same arguments, wrapped in TokenNorm."""
    def build(num_features: int, **kwargs) -> nn.Module:
        return TokenNorm(cls(num_features, **kwargs))
    return build


NORMS.register("batch", "torch BatchNorm1d/2d: batch statistics in training, running statistics in eval")(
    {"conv": nn.BatchNorm2d, "linear": nn.BatchNorm1d, "tokens": _tokens(nn.BatchNorm1d)})
NORMS.register("scratch", "from-scratch BatchNorm (bnablate.layers.ScratchBatchNorm), equal to torch's to 1e-6")(
    {"conv": ScratchBatchNorm, "linear": ScratchBatchNorm})
NORMS.register("layer", "LayerNorm per sample: over features (linear), over (C,H,W) with per-channel affine (conv)")(
    {"conv": LayerNorm2d, "linear": nn.LayerNorm, "tokens": nn.LayerNorm})
NORMS.register("group", "GroupNorm with variant.groups groups (per sample; on linear features too)")(
    {"conv": GroupNormC, "linear": GroupNormC})
NORMS.register("batch_renorm", "Batch Renormalization (Ioffe 2017): BN corrected toward the running statistics by "
               "r, d clipped to bn.renorm_rmax/dmax on the bn.renorm_warmup/ramp schedule")(
    {"conv": BatchRenorm2d, "linear": BatchRenorm1d, "tokens": _tokens(BatchRenorm1d)})
NORMS.register("rms", "RMSNorm (torch's nn.RMSNorm): features scaled by their root mean square, no centring "
               "(vit tokens, linear layers)")({"linear": nn.RMSNorm, "tokens": nn.RMSNorm})
NORMS.register("dyt", "Dynamic Tanh (Zhu et al. 2025): γ·tanh(αx)+β, no statistics at all (α from "
               "variant.dyt_alpha0, 0.5)")(
    {"conv": DyT2d, "linear": DyT, "tokens": DyT})
NORMS.register("none", "no normalization layer")({})

KINDS = {"conv": "conv maps (N, C, H, W)", "linear": "features (N, D)", "tokens": "transformer tokens (N, T, D)"}


def get_norm_layer(name: str, kind: str) -> Callable[..., nn.Module] | None:
    """The norm class (or builder) for `name` on a `kind` layer ('conv', 'linear' or 'tokens'); None for 'none'.
    A norm without a form for that kind is a ValueError naming the norms that have one."""
    classes = NORMS.get(name)
    if name == "none":
        return None
    if kind not in classes:
        fits = [n for n in NORMS.names() if n == "none" or kind in NORMS.get(n)]
        raise ValueError(f"variant.norm={name} has no form for {KINDS[kind]} here; for these use one of "
                         f"{', '.join(fits)}.")
    return classes[kind]


def create_norm_layer(name: str, num_features: int, kind: str, groups: int = 8, momentum: Optional[float] = 0.1,
                      eps: float = 1e-5, affine: bool = True, conv_beta_init: float = 0.0,
                      running_var_init: float = 1.0, ghost_batch_size: Optional[int] = None,
                      ghost_stats: str = "chunk", renorm: Optional[Dict[str, Any]] = None,
                      dyt_alpha0: float = DYT_ALPHA0) -> nn.Module | None:
    """An instance of the named norm for `num_features` channels/features/token features (kind 'conv', 'linear',
    'tokens'), or None for 'none'. momentum (PyTorch
    convention; None = cumulative average) only concerns the batch-statistics norms; eps and affine reach every norm
    (LayerNorm's affine = its elementwise weight and bias). conv_beta_init: β's start on a conv layer's norm (0 as in
    PyTorch; a from-scratch tutorial's 1); running_var_init: the batch-statistics norms' running variance start (1 as
    in PyTorch; that tutorial's 0). ghost_batch_size: BN normalizes each chunk of that many samples on its own in
    training (ghost_bn.py); for norms 'batch' and 'batch_renorm'; ghost_stats: how their running statistics are kept
    ('chunk' | 'step', ghost_bn.GHOST_STATS). renorm: Batch Renorm's schedule, limits and running σ (warmup, ramp,
    rmax, dmax, avg; batch_renorm.py) for norm 'batch_renorm'. dyt_alpha0: DyT's initial α (norm 'dyt')."""
    cls = get_norm_layer(name, kind)
    if cls is None:
        return None
    extra: Dict[str, Any] = {}  # the batch-statistics norms' own options
    if ghost_batch_size is not None and name not in GHOST_NORMS:
        raise ValueError(f"bn.ghost_batch_size splits the batch statistics of BatchNorm, and variant.norm={name} "
                         f"has none to split: use variant.norm=batch (or batch_renorm), or bn.ghost_batch_size=null.")
    ghost = None if ghost_batch_size is None else int(ghost_batch_size)
    if ghost is not None and kind == "tokens":
        raise ValueError("bn.ghost_batch_size chunks a batch of samples, and a transformer's BN normalizes over "
                         "samples × tokens: ghost batches are not supported in model=vit; use bn.ghost_batch_size=null.")
    if name == "batch" and ghost is not None:
        cls, extra = (GhostBatchNorm2d if kind == "conv" else GhostBatchNorm1d), {"ghost": ghost,
                                                                                  "ghost_stats": ghost_stats}
    elif name == "batch_renorm":
        extra = {**(renorm or {}), "ghost": ghost, "ghost_stats": ghost_stats}
    if name in BATCH_STAT_NORMS:
        layer = cls(num_features, eps=eps, momentum=momentum, affine=affine, **extra)
        (layer.inner if isinstance(layer, TokenNorm) else layer).running_var.fill_(running_var_init)
    elif cls is GroupNormC:
        layer = cls(num_features, groups=groups, eps=eps, affine=affine)
    elif cls is nn.LayerNorm:
        layer = cls(num_features, eps=eps, elementwise_affine=affine, bias=affine)
    elif cls is nn.RMSNorm:
        layer = cls(num_features, eps=eps, elementwise_affine=affine)
    elif cls in (DyT, DyT2d):
        layer = cls(num_features, alpha_init=dyt_alpha0, affine=affine)  # no statistics, so no eps
    else:
        layer = cls(num_features, eps=eps, affine=affine)
    if kind == "conv" and affine and conv_beta_init != 0.0:
        nn.init.constant_(layer.bias, conv_beta_init)  # (C,)
    return layer


def variant_norm(v, num_features: int, kind: str, bn=None) -> nn.Module | None:
    """The variant's norm (variant.norm with its groups and DyT's α₀, the `bn` section's options) for a `kind` layer
    of `num_features`: what every model builds where its blocks place a norm."""
    return create_norm_layer(v.norm, num_features, kind, groups=int(v.groups),
                             dyt_alpha0=float(getattr(v, "dyt_alpha0", DYT_ALPHA0)), **norm_options(bn))


def norm_options(bn) -> Dict[str, Any]:
    """create_norm_layer's keyword options from a `bn` config section; {} (the defaults) for None."""
    if bn is None:
        return {}
    return {"momentum": None if bn.momentum is None else float(bn.momentum), "eps": float(bn.eps),
            "affine": bool(bn.affine), "conv_beta_init": float(bn.conv_beta_init),
            "running_var_init": float(bn.running_var_init),
            "ghost_batch_size": None if bn.ghost_batch_size is None else int(bn.ghost_batch_size),
            "ghost_stats": str(bn.ghost_stats),
            "renorm": {"warmup": int(bn.renorm_warmup), "ramp": int(bn.renorm_ramp), "rmax": float(bn.renorm_rmax),
                       "dmax": float(bn.renorm_dmax), "avg": str(bn.renorm_avg)}}


def batch_norm_layers(model: nn.Module) -> List[nn.Module]:
    """Every batch-statistics norm in the model (torch's BatchNorm*d and the from-scratch BN), in module order."""
    return [m for m in model.modules() if isinstance(m, BATCH_NORM_TYPES)]


def norm_names() -> Tuple[str, ...]:
    return tuple(NORMS.names())
