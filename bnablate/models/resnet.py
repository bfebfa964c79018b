"""CIFAR ResNet (He et al. 2015, §4.2): a 3×3 conv, three stages of n basic blocks (16/32/64 channels, the last two
halving H and W), global average pooling and a linear classifier: 6n + 2 layers. The block design is variant.residual."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..layers.residual import PRE_ACTIVATION, build_parts, make_residual_block, residual_parts
from ..registry import check_choice
from .registry import ModelShapeError, register_model, spatial

SHORTCUTS = {"A": "identity, subsampled and zero-padded where the shape changes (no parameters; He et al.'s CIFAR "
                  "choice)", "B": "a 1×1 conv (+ norm in post-activation designs) where the shape changes"}


def blocks_per_stage(depth: int) -> int:
    """n for a depth of 6n + 2 (20 → 3, 32 → 5, 56 → 9, 110 → 18); ModelShapeError otherwise."""
    if depth < 8 or (depth - 2) % 6:
        raise ModelShapeError(f"model.depth must be 6n + 2 with n ≥ 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth}: "
                              f"three stages of n two-conv blocks plus the first conv and the classifier.")
    return (depth - 2) // 6


@register_model("resnet", "CIFAR ResNet: 6n+2 layers (model.depth 20/32/56/110), stages of 16/32/64 ch, block design "
                          "variant.residual ((a)–(e) of He et al. 2016)", residual=True)
def resnet(model_cfg, variant, input_shape, num_classes: int, bn=None) -> nn.Module:
    c, h, w = spatial(input_shape)
    n = blocks_per_stage(int(model_cfg.depth))
    check_choice("model.shortcut", model_cfg.shortcut, SHORTCUTS, ModelShapeError)
    widths = [int(x) for x in model_cfg.widths]
    if len(widths) != 3 or min(widths) < 1:
        raise ModelShapeError(f"model.widths must be three channel counts (one per stage), got {list(widths)}.")
    if h < 4 or w < 4:
        raise ModelShapeError(f"resnet halves its input twice: it needs at least 4×4 pixels, got {h}×{w}.")
    parts = residual_parts(variant)
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    # The stem's conv bias depends on what follows it: its own norm, or the first block's shared pre-activation.
    stem_context = parts["stem"] + parts["pre"]
    layers["stem"] = build_parts(parts["stem"], variant, {"conv": (c, widths[0], 3, 1, 1), "norm": (widths[0],)}, bn,
                                 bias_context=stem_context)
    c = widths[0]
    for s, width in enumerate(widths, start=1):
        stage: "OrderedDict[str, nn.Module]" = OrderedDict()
        for i in range(n):
            stride = 2 if (i == 0 and s > 1) else 1  # stages 2 and 3 open by halving H and W
            stage[str(i)] = make_residual_block(c, width, stride, variant, shortcut=str(model_cfg.shortcut),
                                                shared_pre=i == 0, bn=bn)
            c = width
        layers[f"layer{s}"] = nn.Sequential(stage)
    if parts["final"]:  # pre-activation: the last block's sum gets the activation no later block gives it
        layers["final"] = build_parts(parts["final"], variant, {"norm": (c,)}, bn)
    layers["pool"] = nn.AdaptiveAvgPool2d(1)  # (N, 64, H/4, W/4) → (N, 64, 1, 1)
    layers["flatten"] = nn.Flatten()
    layers["head"] = nn.Linear(c, num_classes)
    return nn.Sequential(layers)


__all__ = ["PRE_ACTIVATION", "SHORTCUTS", "blocks_per_stage", "resnet"]
