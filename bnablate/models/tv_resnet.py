"""torchvision's own resnet18, its norm layers made by bnablate's norm factory: the variant's norm on an architecture
a user already has (its block order is torchvision's, design (a))."""

from __future__ import annotations

import torch
from torch import nn

from ..layers.blocks import VariantError, has_norm
from ..layers.norm import norm_options, variant_norm
from .registry import register_model, spatial


def _check(variant) -> None:
    """torchvision fixes everything but the norm: refuse the axes it cannot express, naming model=resnet."""
    fixed = {"placement": ("pre_act", "none"), "dropout": ("none",), "activation": ("relu",),
             "residual": ("original",), "residual_init": ("standard", "zero_gamma")}
    for axis, allowed in fixed.items():
        if str(getattr(variant, axis)) not in allowed:
            raise VariantError(f"model=tv_resnet18 is torchvision's resnet18, whose layers fix variant.{axis} to "
                               f"{' or '.join(allowed)} (got {getattr(variant, axis)}); only the norm is bnablate's. "
                               f"Use model=resnet for the other axes.")
    if variant.residual_init == "zero_gamma" and not has_norm(variant):
        raise VariantError("variant.residual_init=zero_gamma (torchvision's zero_init_residual=True) needs a norm.")


@register_model("tv_resnet18", "torchvision's resnet18 with norm_layer from the norm factory (variant.norm: batch, "
                               "scratch, group, layer, none; design (a) only)", residual=True)
def tv_resnet18(model_cfg, variant, input_shape, num_classes: int, bn=None) -> nn.Module:
    from torchvision.models import resnet18

    _check(variant)
    options = norm_options(bn)
    on = has_norm(variant)
    if on and not options.get("affine", True):  # torchvision's own init sets every norm's weight and bias
        raise VariantError("model=tv_resnet18 initialises every norm's γ and β itself: it needs bn.affine=true.")
    c, _h, _w = spatial(input_shape)
    made = []

    def norm_layer(channels: int) -> nn.Module:  # torchvision calls norm_layer(C) for every norm it places
        made.append(variant_norm(variant, channels, "conv", bn)
                    if on else nn.Identity())
        return made[-1]

    model = resnet18(num_classes=num_classes, norm_layer=norm_layer,
                     zero_init_residual=variant.residual_init == "zero_gamma")
    beta = options.get("conv_beta_init", 0.0)
    for norm in made if on and beta else []:  # torchvision's init set β to 0: bn.conv_beta_init again
        nn.init.constant_(norm.bias, beta)
    if c != 3:  # the stem for 1-channel images: the same conv on c input channels
        model.conv1 = nn.Conv2d(c, 64, kernel_size=7, stride=2, padding=3, bias=False)
    # torchvision builds every conv without bias, each followed by a norm: variant.bias on (or auto with no norm)
    # gives them one, which build_model's paired init then draws like any other bias
    if variant.bias == "on" or (variant.bias == "auto" and not on):
        for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels))
    return model
