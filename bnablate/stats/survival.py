"""Time-to-target with runs that never reach it: the Kaplan–Meier median (statsmodels), not a mean of the lucky ones."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def km_median(times: Sequence[float], reached: Sequence[bool]) -> float:
    """Median time to the target, runs that never reached it censored at their last time (a diverged run: after
    everyone): the first time the Kaplan–Meier survival drops below 1/2 (statsmodels' and SAS's convention). nan
    when it never does (half or more never reached it): the median is then beyond what was observed."""
    t = np.asarray(times, dtype=float)
    hit = np.asarray(reached, dtype=bool)
    if len(t) == 0 or not hit.any():
        return math.nan
    never = ~np.isfinite(t)
    t = np.where(never, np.nanmax(np.where(never, np.nan, t)) + 1 if (~never).any() else 1.0, t)
    from statsmodels.duration.survfunc import SurvfuncRight  # here: statsmodels slows every command's start-up

    return float(SurvfuncRight(t, hit.astype(int)).quantile(0.5))
