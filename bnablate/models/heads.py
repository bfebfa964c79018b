"""The classifier tail the builders share: FC blocks `fc1…fcN` (variant applied) then the plain linear `head`."""

from __future__ import annotations

from typing import Iterable, MutableMapping

from torch import nn

from ..layers import make_block


def add_classifier(layers: MutableMapping[str, nn.Module], width: int, hidden: Iterable, variant, num_classes: int,
                   bn=None) -> None:
    """Append `fc{i}` blocks of the `hidden` widths to `layers`, from `width` input features, then `head`.
    The names and the order are those of every recorded run: paired init keys each layer's draw by its name, and
    fine-tuning leaves out exactly `head`, so neither may change."""
    for i, out in enumerate(hidden, start=1):
        layers[f"fc{i}"] = make_block("linear", width, int(out), variant, bn=bn)
        width = int(out)
    layers["head"] = nn.Linear(width, num_classes)  # no norm or activation: the logits
