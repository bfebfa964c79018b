"""Small VGG-style CNN: stages of 3×3 conv blocks, 2×2 max-pool after each stage, then FC blocks and a classifier."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..layers import make_block
from .heads import add_classifier
from .registry import ModelShapeError, register_model, spatial


@register_model("cnn", "VGG-style: stages of 3×3 convs (model.channels, default 32/64/128 × 2) + max-pool → classifier")
def cnn(model_cfg, variant, input_shape, num_classes: int, bn=None) -> nn.Module:
    c, h, w = spatial(input_shape)
    stages = len(model_cfg.channels)
    if h >> stages < 1 or w >> stages < 1:
        raise ModelShapeError(
            f"cnn with {stages} pooling stages needs inputs of at least {2 ** stages}×{2 ** stages} pixels, "
            f"got {h}×{w}; use fewer model.channels or another model.")
    if int(model_cfg.convs_per_stage) < 1:
        raise ModelShapeError(f"model.convs_per_stage must be ≥ 1, got {model_cfg.convs_per_stage}")
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    for s, out in enumerate(model_cfg.channels, start=1):
        for j in range(1, int(model_cfg.convs_per_stage) + 1):
            last = j == int(model_cfg.convs_per_stage)  # only the stage's last conv pools (halves H and W)
            pool = nn.MaxPool2d(2) if last else None
            layers[f"conv{s}_{j}"] = make_block("conv", c, int(out), variant, pool=pool, kernel_size=3, padding=1,
                                                bn=bn)
            c = int(out)
        h, w = h // 2, w // 2
    layers["flatten"] = nn.Flatten()
    width = c * h * w  # 128 × 4 × 4 = 2048 for CIFAR-10
    add_classifier(layers, width, model_cfg.fc, variant, num_classes, bn=bn)
    return nn.Sequential(layers)
