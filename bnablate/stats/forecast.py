"""Power before the budget: for a family of k comparisons under a design, the power to decide a true difference of
`effect` (default: the margin) and the seeds that power 0.8 takes, from a pilot's spread of the paired differences.

The fixed design's answer is statsmodels' TTestPower (two-sided paired t at α/k; for equivalence, TOST's two one-sided
tests, power bounded below by P₁ + P₂ − 1). The group-sequential and anytime-valid designs have no closed form at a
handful of seeds; their power is the project's own simulation (simulation.sequential: the same decide() the
report uses), seeded, so a forecast is reproducible."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .designs import ANYTIME, Design
from .minimum import fewest_seeds
from .power import POWER, ttest_power

REPS = 2000  # simulated repetitions per power evaluation (standard error of a power near 0.8: 0.009)
MAX_BUDGET = 400


@dataclass(frozen=True)
class Forecast:
    design: Design
    family_size: int
    effect: float  # the difference the power is for (metric units)
    sd: float  # the pilot's sd of paired differences (metric units)
    budget: int  # the planned seeds (the design's last look; anytime: the cap)
    power: float  # at `budget`, to call a true difference of `effect` better/worse
    seeds_for_power: float  # the smallest budget (same design shape) with power ≥ 0.8; ∞ beyond MAX_BUDGET
    fewest: int  # below this many seeds no verdict is possible


def scaled(design: Design, budget: int) -> Design:
    """The design with its looks stretched to a new budget (same information fractions; anytime: unchanged)."""
    if design.kind == "anytime":
        return design
    if design.kind == "fixed":
        return Design("fixed", (budget,))
    fr = np.asarray(design.looks, dtype=float) / design.looks[-1]
    looks = tuple(sorted({max(2, int(round(f * budget))) for f in fr}))
    return Design("sequential", looks, design.spending) if len(looks) >= 2 else Design("fixed", (budget,))


def power_at(design: Design, budget: int, family_size: int, effect_dz: float, alpha: float = 0.05,
             reps: int = REPS, seed: int = 0) -> float:
    """Power to call a standardized difference `effect_dz` (mean / sd of the paired differences) better, per
    comparison of a family of k all at that effect, with at most `budget` seeds."""
    if design.kind == "fixed":
        if budget < 2:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(ttest_power().power(effect_size=effect_dz, nobs=budget, alpha=alpha / family_size))
    from .simulation import normal, sequential, shifted  # simulation imports this module's neighbours

    n0 = fewest_seeds(family_size, alpha, design)
    if budget < n0:
        return 0.0
    d = scaled(design, budget)
    o = sequential(shifted(normal(1 / math.sqrt(2)), effect_dz), k=family_size, reps=reps, n0=n0, n_max=budget,
                   alpha=alpha, seed=seed, design=d)
    return o.power()


def seeds_for_power(design: Design, family_size: int, effect_dz: float, alpha: float = 0.05,
                    power: float = POWER) -> float:
    """The smallest budget whose power reaches `power` (bisection; power grows with the budget)."""
    if not (math.isfinite(effect_dz) and effect_dz > 0):
        return math.inf
    lo = fewest_seeds(family_size, alpha, design if design.kind == "anytime" else ANYTIME) - 1
    lo = max(lo, 1) if design.kind != "fixed" else 1
    hi = lo + 1
    while power_at(design, hi, family_size, effect_dz, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > MAX_BUDGET:
            return math.inf
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power_at(design, mid, family_size, effect_dz, alpha) >= power else (mid, hi)
    return float(hi)


def forecast(design: Design, budget: int, family_size: int, sd: float, effect: float, alpha: float = 0.05
             ) -> Forecast:
    """The forecast for one family from a pilot's sd of paired differences (metric units)."""
    dz = effect / sd if sd > 0 else math.inf
    return Forecast(design, family_size, effect, sd, budget,
                    power_at(design, budget, family_size, dz, alpha) if math.isfinite(dz) else 1.0,
                    seeds_for_power(design, family_size, dz, alpha) if math.isfinite(dz) else 2.0,
                    fewest_seeds(family_size, alpha, design))


__all__ = ["Forecast", "MAX_BUDGET", "forecast", "power_at", "scaled", "seeds_for_power"]
