"""Model registry and builders; `build_model` applies the variant and the paired initialization (model.init)."""

from __future__ import annotations

from torch import nn

from ..layers import validate_variant
from ..layers.residual import validate_residual
from ..layers.transformer import validate_transformer
from . import cnn, lenet, mlp, resnet, tv_resnet, vit  # noqa: F401  (registers the builders)
from .init import INITS, InitError, check_init, layer_inits, paired_init_
from .registry import MODELS, ModelShapeError, register_model


def build_model(model_cfg, variant, input_shape, num_classes: int, seed: int, bn=None) -> nn.Module:
    """The named model for this input shape and class count, with its variant's blocks (norms built with the `bn`
    section's momentum/eps/affine; None = defaults) and paired init as model.init says (refused where meaningless)."""
    validate_variant(variant)
    builder = MODELS.get(model_cfg.name)
    validate_residual(variant, getattr(builder, "residual", False))
    validate_transformer(variant, getattr(builder, "transformer", False))
    model = builder(model_cfg, variant, tuple(input_shape), int(num_classes), bn=bn)
    check_init(model, str(model_cfg.init), str(model_cfg.name))
    return paired_init_(model, seed, str(model_cfg.init))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["INITS", "InitError", "MODELS", "ModelShapeError", "build_model", "count_params", "layer_inits",
           "paired_init_", "register_model"]
