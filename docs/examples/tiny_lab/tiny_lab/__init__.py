"""An example bnablate plugin: a model built with bnablate's block factory (so every placement axis applies), a
model that takes a `norm_layer` (the torchvision/timm convention: the norm-type axis only), a dataset, and configs
(a dataset file, a variant preset, a sweep preset) found through Hydra's search path."""

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from bnablate.config import ModelConfig, option, register_model_schema
from bnablate.data.registry import RawData, register_dataset
from bnablate.keys import Role
from bnablate.layers import create_norm_layer, has_norm, make_block
from bnablate.models.registry import ModelShapeError, register_model, spatial

CONFIG_PATH = "pkg://tiny_lab.conf"  # conf/dataset, conf/variant, conf/sweep of this package


@dataclass
class TinyConfig(ModelConfig):
    width: int = option(8, Role.RESULT, "tiny / tiny_norm_layer: channels of the conv block")


register_model_schema("tiny", TinyConfig)
register_model_schema("tiny_norm_layer", TinyConfig)


@register_model("tiny", "tiny_lab: one 3×3 conv block (bnablate's make_block: every placement axis) → classifier")
def tiny(model_cfg, variant, input_shape, num_classes: int, bn=None) -> nn.Module:
    c, h, w = spatial(input_shape)
    if h < 2 or w < 2:
        raise ModelShapeError(f"tiny needs inputs of at least 2×2 pixels, got {h}×{w}")
    width = int(model_cfg.width)
    layers = OrderedDict()
    layers["conv1"] = make_block("conv", c, width, variant, pool=nn.MaxPool2d(2), kernel_size=3, padding=1, bn=bn)
    layers["flatten"] = nn.Flatten()
    layers["head"] = nn.Linear(width * (h // 2) * (w // 2), num_classes)
    return nn.Sequential(layers)


class NormLayerNet(nn.Module):
    """A model written the torchvision/timm way: it takes `norm_layer` (a class called with the channel count)."""

    def __init__(self, c: int, width: int, num_classes: int, norm_layer=nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, width, 3, padding=1, bias=False)
        self.norm = norm_layer(width) or nn.Identity()  # bnablate's factory gives None for norm=none
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3)))


@register_model("tiny_norm_layer", "tiny_lab: a norm_layer-style model (variant.norm picks its norm class)")
def tiny_norm_layer(model_cfg, variant, input_shape, num_classes: int, bn=None) -> nn.Module:
    c, _h, _w = spatial(input_shape)
    norm = variant.norm if has_norm(variant) else "none"  # no_bn: no norm at all
    norm_layer = partial(create_norm_layer, norm, kind="conv", groups=int(variant.groups))  # (C) -> module | None
    return NormLayerNet(c, int(model_cfg.width), num_classes, norm_layer=norm_layer)


@register_dataset("blobs", "tiny_lab: 3×8×8 images of 3 noisy colour blobs (generated, no files)", (3, 8, 8), 3,
                  has_test_split=False)
def blobs(cfg) -> RawData:
    g = torch.Generator().manual_seed(7)
    n, classes = 300, 3
    centers = 2 * torch.randn(classes, 3, 1, 1, generator=g).expand(classes, 3, 8, 8)  # one colour per class
    y = torch.arange(n) % classes
    return RawData(centers[y] + torch.randn(n, 3, 8, 8, generator=g), y)
