"""Residual blocks: where the norm and activation go around the addition (He et al. 2016, Fig. 4), built from the
norm and activation factories, and how the residual branch starts (zero-initialised γ, SkipInit)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import check_choice
from .activations import create_act_layer
from .blocks import VariantError, has_norm
from .norm import variant_norm

# Each design as part lists in its own (pre-activation) placement: `pre` opens the branch (pre-activation designs;
# shared with the shortcut in a stage's first block), `branch` is the residual branch, `post` follows the addition,
# `final` follows the last block (before pooling), `stem` is the first conv's block.
DESIGNS: Dict[str, Dict[str, List[str]]] = {
    "original": dict(stem=["conv", "norm", "act"], pre=[], branch=["conv1", "norm1", "act1", "conv2", "norm2"],
                     post=["act"], final=[]),
    "bn_after_add": dict(stem=["conv", "norm", "act"], pre=[], branch=["conv1", "norm1", "act1", "conv2"],
                         post=["norm", "act"], final=[]),
    "relu_before_add": dict(stem=["conv", "norm", "act"], pre=[],
                            branch=["conv1", "norm1", "act1", "conv2", "norm2", "act2"], post=[], final=[]),
    "relu_preact": dict(stem=["conv"], pre=["act0"], branch=["conv1", "norm1", "act1", "conv2", "norm2"], post=[],
                        final=["act"]),
    "full_preact": dict(stem=["conv"], pre=["norm0", "act0"], branch=["conv1", "norm1", "act1", "conv2"], post=[],
                        final=["norm", "act"]),
}
RESIDUAL = {
    "original": "(a) conv-BN-ReLU-conv-BN, add, ReLU: He et al. 2015, torchvision's BasicBlock",
    "bn_after_add": "(b) conv-BN-ReLU-conv, add, BN, ReLU",
    "relu_before_add": "(c) conv-BN-ReLU-conv-BN-ReLU, add",
    "relu_preact": "(d) ReLU-conv-BN-ReLU-conv-BN, add (ReLU-only pre-activation; a final ReLU after the last block)",
    "full_preact": "(e) BN-ReLU-conv-BN-ReLU-conv, add (full pre-activation, He et al. 2016; a final BN-ReLU after the "
                   "last block)",
}
RESIDUAL_INIT = {
    "standard": "every layer at its usual init",
    "zero_gamma": "the last norm's γ in each residual branch starts at 0, so each block starts as the identity "
                  "(Goyal et al. 2017; torchvision's zero_init_residual=True); needs a norm with affine",
    "skipinit": "a learnable scalar multiplies each residual branch, starting at 0 (De & Smith 2020's SkipInit, the "
                "norm-free alternative); needs variant norm none",
}
PRE_ACTIVATION = ("relu_preact", "full_preact")


def validate_residual(v, residual_model: bool) -> None:
    """The residual axes: known values; non-default ones only on a residual model; each init with what it needs."""
    check_choice("variant.residual", v.residual, RESIDUAL, VariantError)
    check_choice("variant.residual_init", v.residual_init, RESIDUAL_INIT, VariantError)
    if not residual_model:
        if v.residual != "original" or v.residual_init != "standard":
            raise VariantError(f"variant.residual={v.residual} / variant.residual_init={v.residual_init} shape "
                               f"residual blocks, which this model has none of: use model=resnet, or leave them at "
                               f"original / standard.")
        return
    if v.residual_init == "zero_gamma" and not has_norm(v):
        raise VariantError("variant.residual_init=zero_gamma zeroes the last norm's γ of each branch, and this variant "
                           "has no norm: use variant.residual_init=skipinit (variant=rn_skipinit), its norm-free "
                           "counterpart.")
    if v.residual_init == "skipinit" and has_norm(v):
        raise VariantError(f"variant.residual_init=skipinit replaces normalization (De & Smith 2020), and this variant "
                           f"normalizes with variant.norm={v.norm}: with a norm use variant.residual_init=zero_gamma "
                           f"(variant=rn_zero_gamma); for SkipInit use variant=rn_skipinit (no norm).")


def _swap_norm_act(parts: List[str]) -> List[str]:
    """post_act (and post_pool, which has no pooling here): each norm that precedes an activation follows it."""
    out = list(parts)
    for i in range(len(out) - 1):
        if out[i].startswith("norm") and out[i + 1].startswith("act"):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def residual_parts(v) -> Dict[str, List[str]]:
    """The design's part lists as this variant builds them: the placement applied, norms dropped without a norm,
    dropout beside the norm between the two convs (after the middle activation without a norm)."""
    design = {name: list(parts) for name, parts in DESIGNS[v.residual].items()}
    if v.placement in ("post_act", "post_pool"):
        design = {name: _swap_norm_act(parts) for name, parts in design.items()}
    if not has_norm(v):
        design = {name: [p for p in parts if not p.startswith("norm")] for name, parts in design.items()}
    if v.dropout != "none":
        branch = design["branch"]
        if "norm1" in branch:
            i = branch.index("norm1")
            branch.insert(i + 1 if v.dropout == "norm_then_dropout" else i, "drop")
        else:
            branch.insert(branch.index("act1") + 1, "drop")
    return design


def _bias(v, parts: List[str], i: int) -> bool:
    """Whether the conv at parts[i] has a bias: variant.bias, with auto = off exactly when a norm follows it (parts
    may continue past the addition, where a norm after it makes the branch's last bias as redundant)."""
    if v.bias == "auto":
        return not (i + 1 < len(parts) and parts[i + 1].startswith("norm"))
    return v.bias == "on"


class ResidualAdd(nn.Module):
    """branch + shortcut; with SkipInit, gain · branch + shortcut (gain a learnable scalar, (1,), starting at 0)."""

    def __init__(self, skipinit: bool = False) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.zeros(1)) if skipinit else None

    def forward(self, branch: Tensor, shortcut: Tensor) -> Tensor:
        return (branch if self.gain is None else branch * self.gain) + shortcut


class ZeroPadShortcut(nn.Module):
    """He et al. 2015's option A: the identity, subsampled by `stride` and zero-padded with the extra channels, so a
    block that changes shape adds no parameter (and no norm)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))  # (N, C + extra, H/s, W/s)

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra}, stride={self.stride}"


class ResidualBlock(nn.Module):
    """pre → (branch, shortcut) → add → post. `pre` is empty except in a pre-activation design's stage-opening blocks,
    where the pre-activation is shared by both paths (He et al. 2016's "first activation before splitting")."""

    def __init__(self, pre: nn.Sequential, branch: nn.Sequential, shortcut: nn.Module, add: ResidualAdd,
                 post: nn.Sequential) -> None:
        super().__init__()
        self.pre, self.branch, self.shortcut, self.add, self.post = pre, branch, shortcut, add, post

    def forward(self, x: Tensor) -> Tensor:
        h = self.pre(x)
        return self.post(self.add(self.branch(h), self.shortcut(h)))


def build_parts(parts: List[str], v, channels: Dict[str, tuple], bn=None, bias_context: Optional[List[str]] = None
                ) -> nn.Sequential:
    """A Sequential of the named parts: convs from channels[name] = (in, out, kernel, stride, padding), norms and
    activations over channels[name] = (C,). bias_context: the part list that decides each conv's bias (default
    parts itself)."""
    context = bias_context or parts
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    for name in parts:
        if name.startswith("conv"):
            cin, cout, k, stride, pad = channels[name]
            layers[name] = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=_bias(v, context,
                                                                                     context.index(name)))
        elif name.startswith("norm"):
            layers[name] = variant_norm(v, channels[name][0], "conv", bn)
        elif name.startswith("act"):
            layers[name] = create_act_layer(v.activation)
        elif name == "drop":
            layers[name] = nn.Dropout(float(v.dropout_p))
    return nn.Sequential(layers)


def make_residual_block(in_channels: int, out_channels: int, stride: int, v, shortcut: str = "A",
                        shared_pre: bool = False, bn=None) -> ResidualBlock:
    """One basic block (two 3×3 convs) of the variant's residual design. shared_pre: this block opens a stage, so a
    pre-activation design applies its pre-activation before splitting. shortcut 'A' (zero-padding identity) or 'B'
    (1×1 conv, plus the norm in a post-activation design) where the shape changes; the identity elsewhere."""
    parts = residual_parts(v)
    pre, branch = (parts["pre"], parts["branch"]) if shared_pre else ([], parts["pre"] + parts["branch"])
    # What follows the addition: the post parts, else the next block's pre-activation (or the final one, its equal):
    # a conv that ends a path into the addition is followed by a norm when that starts with one ((b), (e)).
    after_add = parts["post"] or parts["pre"]
    c_in, c = in_channels, out_channels
    channels = {"conv1": (c_in, c, 3, stride, 1), "conv2": (c, c, 3, 1, 1), "norm0": (c_in,), "act0": (c_in,),
                "norm1": (c,), "norm2": (c,), "norm": (c,)}
    if stride == 1 and c_in == c:
        short: nn.Module = nn.Identity()
    elif shortcut == "A":
        short = ZeroPadShortcut(c_in, c, stride)
    else:
        with_norm = has_norm(v) and v.residual not in PRE_ACTIVATION
        sparts = ["conv", "norm"] if with_norm else ["conv"]
        short = build_parts(sparts, v, {"conv": (c_in, c, 1, stride, 0), "norm": (c,)}, bn,
                            bias_context=sparts + after_add)
    block = ResidualBlock(build_parts(pre, v, channels, bn),
                          build_parts(branch, v, channels, bn, bias_context=branch + after_add), short,
                          ResidualAdd(v.residual_init == "skipinit"), build_parts(parts["post"], v, channels, bn))
    if v.residual_init == "zero_gamma":
        if not getattr(bn, "affine", True):
            raise VariantError("variant.residual_init=zero_gamma zeroes each branch's last γ, and bn.affine=false "
                               "leaves the norms without one: set bn.affine=true.")
        last = [m for name, m in block.branch.named_children() if name.startswith("norm")][-1]
        nn.init.zeros_(last.weight)
    return block
