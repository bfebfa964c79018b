"""The fewest seeds at which a family of k comparisons can reach any verdict under a design: below it every
interval is unbounded (anytime) or the design has no look, so looks there are wasted."""

from __future__ import annotations

import math

from .anytime import PHI, confidence_radius
from .designs import ANYTIME, Design


def fewest_seeds(family_size: int, alpha: float, design: Design = ANYTIME, phi: float = PHI, n_max: int = 10_000
                 ) -> int:
    """Anytime: the first n whose confidence sequence at level α/k is finite (5 for k = 1, 6 for 2–6, 7 for 7–25 at
    α = 0.05); a planned design: its first look; a fixed paired t: 2."""
    if design.kind != "anytime":
        return int(design.looks[0])
    level = alpha / family_size
    for n in range(2, n_max):
        if math.isfinite(float(confidence_radius(1.0, n, level, phi))):
            return n
    return n_max


__all__ = ["fewest_seeds"]
