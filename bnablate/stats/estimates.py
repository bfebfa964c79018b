"""Per-group estimates: the mean over seeds with a Student-t interval that respects the metric's resolution and range."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for n < 2
    ci_low: float  # Student-t interval of the mean (floored by the resolution, clipped to the range); nan for n < 2
    ci_high: float


def mean_ci(values: Sequence[float], confidence: float = 0.95, resolution: float = 0.0,
            bounds: Optional[Tuple[float, float]] = None) -> Estimate:
    """Mean with a Student-t CI over seeds. One value gives no CI (nan), no values give all-nan.

    resolution: the metric's step (1/N for an accuracy on N images). Each value is a count rounded to that grid, so
    seeds can agree exactly while the quantity they estimate still varies; the interval's variance is floored by
    the rounding variance h²/12 (never a zero-width interval from three seeds at 358/359). bounds: the metric's range
    ((0, 1) for accuracies); the interval is clipped to it (clipping keeps its coverage: the mean lies inside)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if len(x) == 1:
        return Estimate(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    sd = math.sqrt(std ** 2 + resolution ** 2 / 12)
    if sd == 0.0:  # a continuous metric on which every seed agrees exactly: the interval is the point
        return Estimate(len(x), mean, 0.0, mean, mean)
    from scipy import stats  # here, not at import: scipy.stats costs ~1 s of every command's start-up

    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * sd / math.sqrt(len(x))
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Estimate(len(x), mean, std, lo, hi)
