"""Model registry: `@register_model(name)` on a builder `(model_cfg, variant, input_shape, num_classes, bn)` → module."""

from __future__ import annotations

from typing import Callable, Tuple

from torch import nn

from ..registry import Registry

ModelBuilder = Callable[..., nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")


def register_model(name: str, description: str = "", residual: bool = False, transformer: bool = False
                   ) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register a builder under `name`; residual=True when its blocks follow variant.residual / residual_init,
    transformer=True when they follow variant.transformer (other models refuse non-default values of those axes)."""
    def deco(builder: ModelBuilder) -> ModelBuilder:
        builder.residual = residual  # type: ignore[attr-defined]
        builder.transformer = transformer  # type: ignore[attr-defined]
        return MODELS.register(name, description)(builder)
    return deco


class ModelShapeError(ValueError):
    """A model that cannot take a dataset's input shape."""


def conv_out(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """Output length of a conv/pool along one spatial dim."""
    return (size + 2 * padding - kernel) // stride + 1


def spatial(input_shape: Tuple[int, int, int]) -> Tuple[int, int, int]:
    c, h, w = (int(s) for s in input_shape)
    return c, h, w
