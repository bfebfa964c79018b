"""The one place a transformer block's norm placement lives (variant.transformer), for every transformer model.

Each block is two residual sublayers F (multi-head self-attention, then a 2-layer GELU MLP) on tokens x: (N, T, D),
each wrapped by `Sublayer` as variant.transformer says:
  post      x = N(x + F(x))                    Post-LN (Vaswani et al. 2017, BERT): needs warm-up, unstable when deep
  pre       x = x + F(N(x))                    Pre-LN (GPT-2, ViT; Xiong et al. 2020): the model adds a final N
  peri      x = x + N2(F(N1(x)))               Peri-LN (Kim et al. 2025) / sandwich-LN (Ding et al. 2021): + final N
  deepnorm  x = N(α·x + F(x))                  DeepNorm (Wang et al. 2022), encoder-only: α = (2L)^¼ for L blocks,
                                               and the value, output and MLP weights start β = (8L)^-¼ times smaller
N is the variant's norm in its token form (norm.py: layer, rms, dyt, batch over batch × tokens, ...) or nothing for
`none`. QK-norm (model.qk_norm) is a LayerNorm over each head's queries and keys inside the attention, whatever the
placement: it bounds the attention logits (Dehghani et al. 2023, ViT-22B)."""

from __future__ import annotations

from typing import Callable, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import check_choice
from .activations import create_act_layer
from .blocks import VariantError

TRANSFORMER_PLACEMENTS = {
    "pre": "x + F(N(x)), and a final norm (Pre-LN: GPT-2, ViT)",
    "post": "N(x + F(x)) (Post-LN: the original Transformer, BERT)",
    "peri": "x + N2(F(N1(x))), and a final norm (Peri-LN, Kim et al. 2025; sandwich-LN, Ding et al. 2021)",
    "deepnorm": "N(α·x + F(x)), α = (2L)^¼, value/output/MLP init × (8L)^-¼ (DeepNorm, Wang et al. 2022)",
}
FINAL_NORM = ("pre", "peri")  # placements whose residual stream is never normalized inside a block
NormMaker = Callable[[], Optional[nn.Module]]


def deepnorm_constants(blocks: int) -> tuple:
    """(α, β) of DeepNet's encoder-only setting for `blocks` transformer blocks (each has two sublayers)."""
    return (2 * blocks) ** 0.25, (8 * blocks) ** -0.25


class Attention(nn.Module):
    """Multi-head self-attention over (N, T, D), timm's layout (one qkv projection, an output projection)."""

    def __init__(self, dim: int, heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.dim={dim} must be divisible by model.heads={heads}.")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        # QK-norm: one LayerNorm over the d/H features of every head's queries (keys), shared by the heads, as timm's
        self.q_norm = nn.LayerNorm(dim // heads) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(dim // heads) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (N, H, T, d/H)
        q, k = self.q_norm(q), self.k_norm(k)
        y = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / √(d/H)) v
        return self.proj(y.transpose(1, 2).reshape(n, t, d))


class MLP(nn.Sequential):
    """Linear → the variant's activation (GELU in the tf_* presets) → Linear; with variant.ffn_norm, Linear → N →
    activation → Linear, N the variant's norm over the hidden features (Yao et al. 2021 put BN "in-between the two
    linear layers"; before the activation here, as a conv block's pre-activation BN)."""

    def __init__(self, dim: int, hidden: int, activation: str = "gelu",
                 hidden_norm: Optional[nn.Module] = None) -> None:
        act = create_act_layer(activation)
        # the norm shares the activation's slot, so the linear layers keep their names (mlp.0, mlp.2) and with them
        # their paired initial weights (models/init.py keys each layer's draws by its qualified name)
        super().__init__(nn.Linear(dim, hidden), act if hidden_norm is None else nn.Sequential(hidden_norm, act),
                         nn.Linear(hidden, dim))


class Sublayer(nn.Module):
    """x ↦ the placement's combination of x, F and its norms (module docstring). Absent norms are identities."""

    def __init__(self, fn: nn.Module, placement: str, norm: NormMaker, alpha: float = 1.0) -> None:
        super().__init__()
        self.fn, self.placement, self.alpha = fn, placement, alpha
        self.norm = norm() or nn.Identity()  # pre: before F; post, deepnorm: after the sum; peri: before F
        self.norm_out = (norm() or nn.Identity()) if placement == "peri" else None  # peri: on F's output

    def forward(self, x: Tensor) -> Tensor:
        if self.placement == "pre":
            return x + self.fn(self.norm(x))
        if self.placement == "peri":
            return x + self.norm_out(self.fn(self.norm(x)))  # type: ignore[misc]
        if self.placement == "post":
            return self.norm(x + self.fn(x))
        return self.norm(self.alpha * x + self.fn(x))  # deepnorm

    def extra_repr(self) -> str:
        return f"placement={self.placement}" + (f", alpha={self.alpha:.4g}" if self.placement == "deepnorm" else "")


class TransformerBlock(nn.Sequential):
    """Attention then MLP, each a Sublayer with the placement's norms. DeepNorm marks the value, output and MLP
    weights with `init_scale_rows` = (first row, end row, β), which the paired init multiplies into its draws
    (models/init.py; the paper draws Xavier-normal × β, bnablate keeps its paired draws and scales them)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, placement: str, norm: NormMaker, blocks: int,
                 activation: str = "gelu", qk_norm: bool = False,
                 hidden_norm: Optional[Callable[[int], nn.Module]] = None) -> None:
        alpha, beta = deepnorm_constants(blocks) if placement == "deepnorm" else (1.0, 1.0)
        hidden = max(1, int(round(dim * mlp_ratio)))
        attn = Attention(dim, heads, qk_norm)
        mlp = MLP(dim, hidden, activation, None if hidden_norm is None else hidden_norm(hidden))
        super().__init__(Sublayer(attn, placement, norm, alpha), Sublayer(mlp, placement, norm, alpha))
        if placement == "deepnorm":
            attn.qkv.init_scale_rows = (2 * dim, 3 * dim, beta)  # type: ignore[assignment]  # v's rows of qkv only
            for layer in (attn.proj, mlp[0], mlp[2]):
                layer.init_scale_rows = (0, layer.out_features, beta)  # type: ignore[assignment]


def final_norm_needed(placement: str) -> bool:
    return placement in FINAL_NORM


def validate_transformer(v, transformer: bool) -> None:
    """variant.transformer is known, set only for transformer models; the CNN-only axes keep their defaults there."""
    check_choice("variant.transformer", v.transformer, TRANSFORMER_PLACEMENTS, VariantError)
    if not transformer:
        if bool(v.ffn_norm):
            raise VariantError("variant.ffn_norm=true puts a norm inside a transformer block's MLP; this model has "
                               "none: use model=vit, or leave variant.ffn_norm=false.")
        if v.transformer != "pre":
            raise VariantError(f"variant.transformer={v.transformer} places norms in transformer blocks; this model "
                               f"has none: use model=vit, or leave variant.transformer at pre.")
        return
    if bool(v.ffn_norm) and v.norm == "none":
        raise VariantError("variant.ffn_norm=true puts the variant's norm inside each MLP, and variant.norm=none has "
                           "none: choose a norm (variant=tf_bn_ffn is Yao et al.'s BN-FFN), or variant.ffn_norm=false.")
    if v.placement not in ("pre_act", "none") or v.dropout != "none" or v.bias == "off":
        raise VariantError(f"model=vit places its norms by variant.transformer (pre, post, peri, deepnorm); the CNN "
                           f"axes do not apply: keep variant.placement=pre_act (or none: no norm), variant.dropout="
                           f"none and variant.bias=auto or on (its linear layers keep their biases); got "
                           f"{v.placement}, {v.dropout}, {v.bias}. The tf_* presets (`bnablate list variants`) are "
                           f"ready-made.")


__all__ = ["Attention", "FINAL_NORM", "MLP", "Sublayer", "TRANSFORMER_PLACEMENTS", "TransformerBlock",
           "deepnorm_constants", "final_norm_needed", "validate_transformer"]
