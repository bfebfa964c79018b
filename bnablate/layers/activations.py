"""Activation registry: name → nn.Module class."""

from __future__ import annotations

from torch import nn

from ..registry import Registry

ACTIVATIONS: Registry[type] = Registry("activation")
for _name, _cls, _desc in [
    ("relu", nn.ReLU, "max(0, x)"),
    ("sigmoid", nn.Sigmoid, "logistic sigmoid (LeNet's original non-linearity)"),
    ("tanh", nn.Tanh, "hyperbolic tangent"),
    ("gelu", nn.GELU, "Gaussian error linear unit"),
    ("leaky_relu", nn.LeakyReLU, "leaky ReLU, negative slope 0.01"),
    ("elu", nn.ELU, "exponential linear unit"),
    ("silu", nn.SiLU, "x * sigmoid(x) (swish)"),
]:
    ACTIVATIONS.register(_name, _desc)(_cls)


def create_act_layer(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()
