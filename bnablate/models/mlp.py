"""MLP: flatten → hidden blocks → linear classifier (default 64 → 32, the classic tutorial's shape)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .heads import add_classifier
from .registry import register_model, spatial


@register_model("mlp", "flatten → Linear blocks (model.hidden, default 64, 32) → Linear classifier")
def mlp(model_cfg, variant, input_shape, num_classes: int, bn=None) -> nn.Module:
    c, h, w = spatial(input_shape)
    layers: "OrderedDict[str, nn.Module]" = OrderedDict(flatten=nn.Flatten())
    width = c * h * w
    add_classifier(layers, width, model_cfg.hidden, variant, num_classes, bn=bn)
    return nn.Sequential(layers)
