"""The one place BN placement lives: every model builds its hidden blocks with `make_block` from the variant."""

from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional

from torch import nn

from ..registry import check_choice
from .activations import ACTIVATIONS, create_act_layer
from .dyt import DYT_ALPHA0
from .norm import NORMS, variant_norm

PLACEMENTS = {
    "pre_act": "affine → norm → act (→ pool): Ioffe & Szegedy's placement",
    "post_act": "affine → act → norm (→ pool)",
    "post_pool": "conv → act → pool → norm in blocks that pool; blocks without pooling behave as post_act",
    "none": "no norm layer, whatever variant.norm says",
}
DROPOUTS = {
    "none": "no dropout",
    "norm_then_dropout": "dropout immediately after the norm (BN → Dropout); at block end without a norm",
    "dropout_then_norm": "dropout immediately before the norm (Dropout → BN, the variance-shift order)",
}
BIASES = {
    "on": "affine layers keep their bias",
    "off": "affine layers have no bias",
    "auto": "bias off exactly when a norm directly follows the affine layer (BN's β makes it redundant)",
}


class VariantError(ValueError):
    """A variant whose axes are unknown or inconsistent."""


def validate_variant(v) -> None:
    """Reject unknown or out-of-range axis values with a message naming the fix."""
    check_choice("variant.norm", v.norm, NORMS.names(), VariantError)
    check_choice("variant.placement", v.placement, PLACEMENTS, VariantError)
    check_choice("variant.dropout", v.dropout, DROPOUTS, VariantError)
    check_choice("variant.bias", v.bias, BIASES, VariantError)
    check_choice("variant.activation", v.activation, ACTIVATIONS.names(), VariantError)
    if v.dropout != "none" and not 0.0 <= float(v.dropout_p) < 1.0:
        raise VariantError(f"variant.dropout_p must be in [0, 1), got {v.dropout_p}.")
    if int(v.groups) < 1:
        raise VariantError(f"variant.groups must be ≥ 1, got {v.groups}.")
    alpha0 = float(getattr(v, "dyt_alpha0", DYT_ALPHA0))
    if not alpha0 > 0:
        raise VariantError(f"variant.dyt_alpha0 is Dynamic Tanh's initial α in tanh(α·x), and must be > 0 (at 0 every "
                           f"DyT layer outputs β alone), got {alpha0}: e.g. variant.dyt_alpha0=0.5 (Zhu et al.'s "
                           f"default).")
    if alpha0 != DYT_ALPHA0 and not (has_norm(v) and v.norm == "dyt"):
        # it would build the same model as 0.5 under a second run key
        raise VariantError(f"variant.dyt_alpha0={alpha0} sets Dynamic Tanh's initial α, and this variant has no DyT "
                           f"layer (variant.norm={v.norm}, variant.placement={v.placement}): use variant.norm=dyt "
                           f"(e.g. model=vit variant=tf_pre_dyt), or leave variant.dyt_alpha0={DYT_ALPHA0}.")


def has_norm(v) -> bool:
    return v.norm != "none" and v.placement != "none"


def block_order(v, pools: bool) -> List[str]:
    """Sub-layer order of one hidden block, from 'affine', 'norm', 'drop', 'act', 'pool'."""
    if not has_norm(v):
        order = ["affine", "act"] + (["pool"] if pools else [])
        return order + (["drop"] if v.dropout != "none" else [])
    if v.placement == "pre_act":
        order = ["affine", "norm", "act"] + (["pool"] if pools else [])
    elif v.placement == "post_pool" and pools:
        order = ["affine", "act", "pool", "norm"]
    else:  # post_act, and post_pool in a block that does not pool
        order = ["affine", "act", "norm"] + (["pool"] if pools else [])
    i = order.index("norm")
    if v.dropout == "norm_then_dropout":
        order.insert(i + 1, "drop")
    elif v.dropout == "dropout_then_norm":
        order.insert(i, "drop")
    return order


def use_bias(v, order: List[str]) -> bool:
    if v.bias == "auto":
        return order[1] != "norm"
    return v.bias == "on"


def make_block(kind: str, in_features: int, out_features: int, v, pool: Optional[nn.Module] = None,
               kernel_size: int = 3, padding: int = 0, bn=None) -> nn.Sequential:
    """One hidden block: a conv ('conv', inputs (N,C,H,W)) or linear ('linear', inputs (N,C)) layer plus its
    norm / activation / dropout / pooling in the order the variant asks for. Sub-layer names are fixed
    ('conv'|'linear', 'norm', 'act', 'drop', 'pool') so parameter names do not depend on the variant. `bn` (the
    config's bn section, None = defaults) gives the norm's momentum, eps and affine."""
    order = block_order(v, pools=pool is not None)
    bias = use_bias(v, order)
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    for part in order:
        if part == "affine":
            if kind == "conv":
                layers["conv"] = nn.Conv2d(in_features, out_features, kernel_size, padding=padding, bias=bias)
            else:
                layers["linear"] = nn.Linear(in_features, out_features, bias=bias)
        elif part == "norm":
            layers["norm"] = variant_norm(v, out_features, kind, bn)
        elif part == "act":
            layers["act"] = create_act_layer(v.activation)
        elif part == "drop":
            layers["drop"] = nn.Dropout(float(v.dropout_p))
        elif part == "pool":
            layers["pool"] = pool
    return nn.Sequential(layers)
