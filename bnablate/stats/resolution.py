"""The grid a count-based metric lives on (an accuracy over N images is a multiple of 1/N), read from the recorded
image count or, for tables that lack it, inferred from the values themselves."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable

MAX_COUNT = 1_000_000  # the largest test set a grid is inferred for (ImageNet's validation set is 50,000)
TOLERANCE = 1e-9  # a value within this of k/N counts as on the grid (accuracies are stored as doubles of k/N)


def infer_resolution(values: Iterable[float]) -> float:
    """1/N for the coarsest grid 1/N (N ≤ MAX_COUNT) that every value lies on — never finer than the true one, so
    a variance floor built on it errs on the safe side; nan when no such grid exists (values rounded elsewhere, or
    not counts at all): the caller then has no floor and must not decide."""
    n = 1
    for v in values:
        if not math.isfinite(v):
            continue
        q = Fraction(v).limit_denominator(MAX_COUNT)
        if abs(float(q) - v) > TOLERANCE:
            return math.nan
        n = n * q.denominator // math.gcd(n, q.denominator)
        if n > MAX_COUNT:
            return math.nan
    return 1.0 / n


__all__ = ["MAX_COUNT", "infer_resolution"]
