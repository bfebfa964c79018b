"""Paired initialization: each conv/linear layer draws model.init's distribution from a generator keyed by its name."""

from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple

import torch
from torch import nn

from ..registry import check_choice
from ..seeding import generator

INITS = {
    "torch": "PyTorch's default (nn.Conv2d/nn.Linear.reset_parameters): weights kaiming_uniform(a=√5), biases "
             "U(±1/√fan_in)",
    "he": "torchvision's ResNet: Conv2d weights kaiming_normal (fan_out, relu); Linear layers and biases keep "
          "PyTorch's default",
    "xavier": "xavier_uniform weights for Conv2d and Linear (a fused qkv as one matrix, as torch's "
              "MultiheadAttention), biases 0",
    "trunc_normal": "timm's ViT: Linear weights trunc_normal(std 0.02), their biases 0; position embedding "
                    "trunc_normal(std 0.02), class token normal(std 1e-6); Conv2d keeps PyTorch's default",
}


class InitError(ValueError):
    """model.init unknown, or meaningless for the model built."""


class Draw(NamedTuple):
    """How one init draws one layer type from the layer's own generator, and what `bnablate inspect` shows of it."""

    fn: Callable[[nn.Module, torch.Generator], None]
    weight: str
    bias: str


def _torch_bias(layer: nn.Module, g: torch.Generator) -> None:
    """PyTorch's default bias, U(±1/√fan_in) with fan_in = in_features or in_channels·kh·kw, drawn after the weight."""
    if layer.bias is not None:
        fan_in = layer.weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=g)


def _zero_bias(layer: nn.Module) -> None:
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _torch(layer: nn.Module, g: torch.Generator) -> None:
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=g)  # std = 1/√(3·fan_in)
    _torch_bias(layer, g)


def _he(layer: nn.Module, g: torch.Generator) -> None:
    # torchvision/models/resnet.py: kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu") on every Conv2d,
    # std = √(2/fan_out), fan_out = out_channels·kh·kw; it touches no bias (its convs have none), so a bias here
    # keeps nn.Conv2d's default distribution (drawn, as under torch, from this layer's stream after the weight)
    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu", generator=g)
    _torch_bias(layer, g)


def _xavier(layer: nn.Module, g: torch.Generator) -> None:
    nn.init.xavier_uniform_(layer.weight, generator=g)  # bound √(6/(fan_in + fan_out)); qkv: fan_out = 3·dim
    _zero_bias(layer)


def _trunc_normal(layer: nn.Module, g: torch.Generator) -> None:
    # timm's init_weights_vit_timm: trunc_normal_(std=.02) with timm's (and torch's) default cut at ±2 — absolute,
    # i.e. ±100 σ, so it never binds and the std is 0.02
    nn.init.trunc_normal_(layer.weight, std=0.02, generator=g)
    _zero_bias(layer)


TORCH = Draw(_torch, "kaiming_uniform(a=√5)", "U(±1/√fan_in)")
XAVIER = Draw(_xavier, "xavier_uniform", "0")
RULES: Dict[str, Dict[type, Draw]] = {
    "torch": {nn.Conv2d: TORCH, nn.Linear: TORCH},
    "he": {nn.Conv2d: Draw(_he, "kaiming_normal(fan_out, relu)", "U(±1/√fan_in)"), nn.Linear: TORCH},
    "xavier": {nn.Conv2d: XAVIER, nn.Linear: XAVIER},
    "trunc_normal": {nn.Conv2d: TORCH, nn.Linear: Draw(_trunc_normal, "trunc_normal(std 0.02)", "0")},
}


def _draw(layer: nn.Module, init: str) -> Draw | None:
    for kind, draw in RULES[init].items():
        if isinstance(layer, kind):
            return draw
    return None


def layer_inits(model: nn.Module, init: str) -> Dict[str, str]:
    """Qualified name → what `init` draws for it: every Conv2d/Linear (with DeepNorm's row scaling), and every module
    that initializes its own parameters (a ViT's positions and class token) — what `bnablate inspect` shows."""
    check_choice("model.init", init, INITS, InitError)
    out = {}
    for name, module in model.named_modules():
        draw = _draw(module, init)
        if draw is not None:
            rows = getattr(module, "init_scale_rows", None)
            out[name] = (draw.weight + (f" × {rows[2]:.4g} on rows {rows[0]}:{rows[1]}" if rows is not None else "")
                         + (f", bias {draw.bias}" if module.bias is not None else ""))
        elif hasattr(module, "paired_init_"):
            out[name] = module.paired_init_doc(init)
    return out


def check_init(model: nn.Module, init: str, model_name: str) -> None:
    """Refuse an unknown init, and one that would draw every layer of this model as model.init=torch does (the model
    has none of the layers it re-draws): the same run under a second run key."""
    if init != "torch" and layer_inits(model, init) == layer_inits(model, "torch"):
        raise InitError(f"model.init={init} ({INITS[init]}) would leave every layer of model={model_name} at "
                        f"PyTorch's default: it has none of the layers that init draws. Leave model.init=torch, or "
                        f"use model.init=xavier (every Conv2d and Linear) or trunc_normal (Linear layers).")


@torch.no_grad()
def paired_init_(model: nn.Module, seed: int, init: str = "torch") -> nn.Module:
    """Re-initialize every Conv2d/Linear as model.init says (INITS; `torch`, PyTorch's own default, unless told), from
    a generator keyed by (seed, qualified layer name) — the same generator under every init. Adding a norm layer,
    dropping a bias or changing any other layer therefore cannot shift this layer's weights: variants of one model
    start from identical weights for a given seed and init, which makes seed-matched differences paired comparisons.
    A layer may ask for some of its rows to be scaled (`init_scale_rows`), and a module with `paired_init_(generator,
    init)` initializes its own parameters from its own keyed generator (a ViT's class token and positions; it says
    what it draws with `paired_init_doc(init)`). Norm layers are left as their builders made them under every init."""
    check_choice("model.init", init, INITS, InitError)
    for name, module in model.named_modules():
        draw = _draw(module, init)
        if draw is None:
            continue
        draw.fn(module, generator(seed, "init", name))  # weight drawn first, always
        rows = getattr(module, "init_scale_rows", None)  # (start, stop, factor): DeepNorm's β (layers/transformer.py)
        if rows is not None:
            module.weight[rows[0]:rows[1]].mul_(rows[2])
    for name, module in model.named_modules():  # parameters of other modules that draw their own start (ViT tokens)
        if hasattr(module, "paired_init_"):
            module.paired_init_(generator(seed, "init", name), init)
    return model


__all__ = ["INITS", "InitError", "check_init", "layer_inits", "paired_init_"]
