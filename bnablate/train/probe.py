"""The gradient-norm probe (train.probe): per-layer gradient norms and the residual stream's size, at initialisation
and at the first step of every epoch.

Xiong et al. 2020 (Fig. 3) compare Post-LN and Pre-LN by the gradient norm of each layer at initialisation; Kim et
al. 2025 (Peri-LN) by how the hidden state grows with depth. The probe reads both off the step the loop takes anyway:
the gradients after the epoch's first backward (before the optimizer moves anything, so the first one is the
gradient at initialisation) and the output of every residual block in that forward pass. Reading them changes no
number of the run, so the option is an execution key."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
from torch import nn

from ..layers.residual import ResidualBlock
from ..layers.transformer import TransformerBlock

RESIDUAL_BLOCKS = (ResidualBlock, TransformerBlock)
WRAPPERS = ("module.", "_orig_mod.")  # DDP's and torch.compile's prefixes, not part of a layer's name


def layer_name(name: str) -> str:
    for prefix in WRAPPERS:
        name = name[len(prefix):] if name.startswith(prefix) else name
    return name


def probed_layers(model: nn.Module) -> List[Tuple[str, nn.Parameter]]:
    """(name, weight) of every layer with a weight matrix or kernel (linear, conv, patch embedding), in the model's
    order: the layers whose gradient norm Xiong et al. plot. Norm and bias parameters (1-d) are left out."""
    return [(layer_name(name), m.weight) for name, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), nn.Parameter) and m.weight.dim() >= 2]


class Probe:
    """Attached to one (unpacked) model. The runner calls `at(epoch, step)` before each epoch; the loop calls `arm()`
    before the epoch's first forward and `read()` after its backward.
    Each read appends one row: {"epoch", "step", "grad_norm": {layer: ‖∇W‖₂}, "stream_rms": {block: RMS}}, where a
    block's RMS is sqrt(mean(x²)) of its output over the whole batch (every sample, token and channel): the size of
    the residual stream after that block, comparable across widths."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = probed_layers(model)
        self.rows: List[Dict[str, Any]] = []
        self._armed = False
        self._stream: Dict[str, float] = {}
        self._at = (0, 0)
        self._hooks = [m.register_forward_hook(self._hook(layer_name(name)))
                       for name, m in model.named_modules() if isinstance(m, RESIDUAL_BLOCKS)]

    def _hook(self, name: str):
        def hook(module, inputs, output) -> None:
            if self._armed:
                self._stream[name] = float(output.detach().float().pow(2).mean().sqrt())
        return hook

    def at(self, epoch: int, step: int) -> None:
        """The epoch and (1-based) optimizer step the next read belongs to."""
        self._at = (epoch, step)

    def arm(self) -> None:
        self._armed, self._stream = True, {}

    @torch.no_grad()
    def read(self) -> None:
        # a frozen layer (fine-tuning) has no gradient: left out, not written as 0
        grads = {name: float(w.grad.float().norm()) for name, w in self.layers if w.grad is not None}
        epoch, step = self._at
        self.rows.append({"epoch": epoch, "step": step, "grad_norm": grads, "stream_rms": dict(self._stream)})
        self._armed = False

    def close(self) -> None:
        for h in self._hooks:
            h.remove()


def validate_probe(train) -> None:
    if bool(train.probe) and bool(train.compile):
        raise ValueError("train.probe reads gradients and block outputs through hooks on the model, which "
                         "torch.compile's graph does not call: use train.compile=false with train.probe=true.")


__all__ = ["Probe", "RESIDUAL_BLOCKS", "probed_layers", "validate_probe"]
