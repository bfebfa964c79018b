"""Fixed-design power for an undecided comparison: the smallest effect n seeds detect, and the seeds a fixed design
needs to decide (statsmodels' TTestPower for the paired t-test; TOST as two one-sided tests)."""

from __future__ import annotations

import math
import warnings
from typing import Optional

import numpy as np

POWER = 0.8
MAX_SEEDS = 100_000  # beyond this "needed" is reported as ∞


def ttest_power():
    """statsmodels' TTestPower, imported here: statsmodels.stats.power (and the scipy.stats it loads) adds about a
    second to every command's start-up, and only reports use it."""
    from statsmodels.stats.power import TTestPower

    return TTestPower()


def min_detectable_effect(n: int, sd: float, alpha: float, power: float = POWER) -> float:
    """The difference (in the metric's units) a fixed paired t-test on n seeds detects with `power` at two-sided
    `alpha`, for differences with standard deviation `sd`; nan below 2 seeds."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    with warnings.catch_warnings(record=True):  # at 2–3 seeds and a small α no effect reaches the power: nan, said
        # once (record=True: statsmodels sets its ConvergenceWarning to "always" inside, which would beat "ignore")
        warnings.simplefilter("ignore")
        return float(ttest_power().solve_power(nobs=n, alpha=alpha, power=power)) * sd


def seeds_needed(diff: float, sd: float, alpha: float, margin: Optional[float] = None,
                 power: float = POWER) -> float:
    """Seeds a fixed design needs (with `power`, at `alpha`) to decide either way if the true difference were the
    observed one: to show a difference (two-sided paired t) or, when |diff| < margin, equivalence (TOST: two one-sided
    t-tests, power bounded below by P1 + P2 − 1). ∞ when neither is reachable (diff = 0 and no margin)."""
    if not (math.isfinite(diff) and math.isfinite(sd)):
        return math.nan
    if sd == 0:
        return 2.0
    n = np.arange(2, 2001, dtype=float)
    best = math.inf
    if diff != 0:
        with warnings.catch_warnings(record=True):  # (see above)
            warnings.simplefilter("ignore")  # statsmodels' root finder warns on effects too small to power: nan
            best = float(np.ceil(ttest_power().solve_power(effect_size=abs(diff) / sd, alpha=alpha, power=power)))
        best = math.inf if math.isnan(best) else best
    if margin is not None and abs(diff) < margin:
        tt = ttest_power()
        p1 = tt.power(effect_size=(margin - diff) / sd, nobs=n, alpha=alpha, alternative="larger")
        p2 = tt.power(effect_size=(margin + diff) / sd, nobs=n, alpha=alpha, alternative="larger")
        hit = np.nonzero(p1 + p2 - 1 >= power)[0]
        if len(hit):
            best = min(best, float(n[hit[0]]))
    return best if best <= MAX_SEEDS else math.inf
