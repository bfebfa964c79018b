"""LeNet-5: two 5×5 conv blocks with 2×2 pooling (average by default, or max), then FC 120 → 84 → classes."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..layers import make_block
from ..registry import check_choice
from .heads import add_classifier
from .registry import ModelShapeError, conv_out, register_model, spatial

MIN_SIZE = 28  # smaller inputs (digits' 8×8) are upsampled to 28×28 by a 'resize' layer
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


@register_model("lenet", "LeNet-5: conv 5×5 (6, 16 ch) + 2×2 pool (model.pool avg|max), FC 120 → 84; <28 px inputs "
                         "upsampled to 28")
def lenet(model_cfg, variant, input_shape, num_classes: int, bn=None) -> nn.Module:
    c, h, w = spatial(input_shape)
    check_choice("model.pool", model_cfg.pool, POOLS, ModelShapeError)
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    if h < MIN_SIZE or w < MIN_SIZE:
        h, w = max(h, MIN_SIZE), max(w, MIN_SIZE)
        layers["resize"] = nn.Upsample(size=(h, w), mode="bilinear", align_corners=False)
    # padding null: 28×28 inputs (MNIST) get 2, as in LeCun's 32×32 setting; 32×32 (CIFAR) gets none: both reach 5×5.
    pad = (2 if min(h, w) < 32 else 0) if model_cfg.padding is None else int(model_cfg.padding)
    if pad < 0:
        raise ModelShapeError(f"model.padding must be ≥ 0 (or null for d2l's choice), got {pad}.")
    pool = POOLS[model_cfg.pool]
    c1, c2 = (int(x) for x in model_cfg.conv_channels)
    layers["conv1"] = make_block("conv", c, c1, variant, pool=pool(2), kernel_size=5, padding=pad, bn=bn)
    h, w = conv_out(h, 5, pad) // 2, conv_out(w, 5, pad) // 2
    layers["conv2"] = make_block("conv", c1, c2, variant, pool=pool(2), kernel_size=5, bn=bn)
    h, w = conv_out(h, 5) // 2, conv_out(w, 5) // 2
    if h < 1 or w < 1:
        raise ModelShapeError(f"lenet cannot take input shape {tuple(input_shape)} with model.padding={pad}")
    layers["flatten"] = nn.Flatten()
    width = c2 * h * w  # 16 × 5 × 5 = 400 for 28×28 (padding 2) and 32×32 inputs; 16 × 4 × 4 = 256 at padding 0
    add_classifier(layers, width, model_cfg.fc, variant, num_classes, bn=bn)
    return nn.Sequential(layers)
