"""A small Vision Transformer (Dosovitskiy et al. 2021, timm's layout kept small): patch embedding, a class token (or
mean pooling), learned positions, model.depth transformer blocks whose norms sit where variant.transformer says
(layers/transformer.py), a final norm where the placement needs one, and a linear head."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from ..layers.blocks import has_norm
from ..layers.norm import variant_norm
from ..layers.transformer import TransformerBlock, final_norm_needed
from ..registry import check_choice
from .registry import ModelShapeError, register_model, spatial

POOLINGS = {"cls": "the class token's final state (ViT's, BERT's)", "mean": "the mean over the patch tokens"}


class Tokens(nn.Module):
    """(N, C, H, W) → (N, T, D): non-overlapping patches embedded by one conv (kernel = stride = patch size), the
    class token first when pooling by it, plus learned positions."""

    def __init__(self, channels: int, dim: int, patch: int, patches: int, cls_token: bool) -> None:
        super().__init__()
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.pos = nn.Parameter(torch.zeros(1, patches + int(cls_token), dim))

    @torch.no_grad()
    def paired_init_(self, g: torch.Generator, init: str = "torch") -> None:
        """Positions, then the class token, from this seed's own generator (models/init.py): model.init=trunc_normal
        as timm's VisionTransformer.init_weights (trunc_normal std .02, normal std 1e-6); every other init N(0,
        0.02²) for both (timm's position std; torchvision and torch's MultiheadAttention have no tokens)."""
        timm = init == "trunc_normal"
        if timm:
            nn.init.trunc_normal_(self.pos, std=0.02, generator=g)  # cut at ±2 absolute (timm's default): ±100 σ
        else:
            self.pos.normal_(0.0, 0.02, generator=g)
        if self.cls is not None:
            self.cls.normal_(0.0, 1e-6 if timm else 0.02, generator=g)

    def no_weight_decay(self) -> set:
        """Names of the parameters optim.wd_exclude=timm leaves undecayed, as timm's VisionTransformer.no_weight_decay
        (its pos_embed and cls_token)."""
        return {"pos"} | ({"cls"} if self.cls is not None else set())

    def paired_init_doc(self, init: str) -> str:
        if init == "trunc_normal":
            return "pos trunc_normal(std 0.02)" + (", cls normal(std 1e-6)" if self.cls is not None else "")
        return "pos normal(std 0.02)" + (", cls normal(std 0.02)" if self.cls is not None else "")

    def forward(self, x: Tensor) -> Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)  # (N, D, H/p, W/p) → (N, T, D)
        if self.cls is not None:
            t = torch.cat([self.cls.expand(len(t), -1, -1), t], dim=1)
        return t + self.pos


class Pool(nn.Module):
    def __init__(self, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling

    def forward(self, x: Tensor) -> Tensor:  # (N, T, D) → (N, D)
        return x[:, 0] if self.pooling == "cls" else x.mean(dim=1)

    def extra_repr(self) -> str:
        return self.pooling


@register_model("vit", "small Vision Transformer: patches (model.patch_size) → model.depth blocks of model.dim, "
                       "norms placed by variant.transformer (pre/post/peri/deepnorm)", transformer=True)
def vit(model_cfg, variant, input_shape, num_classes: int, bn=None) -> nn.Module:
    c, h, w = spatial(input_shape)
    patch, dim, depth, heads = (int(model_cfg.patch_size), int(model_cfg.dim), int(model_cfg.depth),
                                int(model_cfg.heads))
    check_choice("model.pooling", model_cfg.pooling, POOLINGS, ModelShapeError)
    if patch < 1 or h % patch or w % patch:
        raise ModelShapeError(f"model.patch_size={patch} must divide the {h}×{w} input into whole patches (e.g. 4 "
                              f"for 8×8, 28×28 and 32×32 images).")
    if min(dim, depth, heads) < 1 or dim % heads:
        raise ModelShapeError(f"model.dim={dim} must be a positive multiple of model.heads={heads}, and model.depth "
                              f"≥ 1 (got {depth}).")
    if float(model_cfg.mlp_ratio) <= 0:
        raise ModelShapeError(f"model.mlp_ratio must be > 0, got {model_cfg.mlp_ratio}.")

    def norm():
        if not has_norm(variant):
            return None
        return variant_norm(variant, dim, "tokens", bn)

    placement = str(variant.transformer)
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    layers["tokens"] = Tokens(c, dim, patch, (h // patch) * (w // patch), model_cfg.pooling == "cls")
    hidden_norm = (lambda width: variant_norm(variant, width, "tokens", bn)) if bool(variant.ffn_norm) else None
    layers["blocks"] = nn.Sequential(*[TransformerBlock(dim, heads, float(model_cfg.mlp_ratio), placement, norm,
                                                        depth, variant.activation, bool(model_cfg.qk_norm),
                                                        hidden_norm)
                                       for _ in range(depth)])
    if final_norm_needed(placement) and has_norm(variant):
        layers["norm"] = norm()  # pre/peri: the residual stream is never normalized inside a block
    layers["pool"] = Pool(str(model_cfg.pooling))
    layers["head"] = nn.Linear(dim, num_classes)
    return nn.Sequential(layers)


__all__ = ["POOLINGS", "Pool", "Tokens", "vit"]
