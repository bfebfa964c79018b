"""The three designs a comparison's interval can come from: anytime-valid (any seeds, any looks), fixed (one look at
the planned seeds: the paired t interval) and group-sequential (planned looks, α-spending: repeated confidence
intervals). Each gives the interval's half-width and the raw p-value; decide.py reads verdicts off them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np
from scipy import stats

from .anytime import PHI, confidence_radius, log_evalue
from .groupseq import SPENDING, t_boundaries

KINDS = ("anytime", "fixed", "sequential")


@dataclass(frozen=True)
class Design:
    """kind: anytime | fixed | sequential. looks: the planned seed counts (fixed: one, the budget; sequential: the
    looks, the last one the budget; anytime: none). spending: the sequential design's α-spending function."""
    kind: str = "anytime"
    looks: Tuple[int, ...] = ()
    spending: str = "obf"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown design {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.kind == "fixed" and len(self.looks) != 1:
            raise ValueError("a fixed design has exactly one look: its seed budget")
        if self.kind == "sequential" and (len(self.looks) < 2 or self.spending not in SPENDING):
            raise ValueError("a sequential design needs two or more looks and a spending function "
                             f"({', '.join(SPENDING)})")

    @property
    def has_p(self) -> bool:
        """Whether raw p-values exist: the sequential design's verdicts come from its repeated intervals only."""
        return self.kind != "sequential"

    def describe(self, family_size: int, alpha: float, holm: bool = False) -> str:
        """The method, as the report's `method` column states it."""
        how = (f"Holm over {family_size} (interval at the level of the step that decided it)" if holm else
               f"Bonferroni over {family_size}: interval at level 1 − {alpha:g}/{family_size}")
        if self.kind == "fixed":
            return f"fixed design, paired t at {self.looks[0]} seeds, {how}"
        if self.kind == "sequential":
            looks = ",".join(map(str, self.looks))
            return (f"group-sequential design, looks at {looks} seeds, Lan–DeMets {self.spending} spending, "
                    f"repeated confidence intervals, {how}")
        return f"anytime-valid paired t (normal mixture, φ={PHI:g}), {how}"

    def planned(self, n: int) -> bool:
        """Whether a comparison on n paired seeds is one this design can judge (anytime: any)."""
        return self.kind == "anytime" or int(n) in self.looks

    def radius(self, s2, n, level, phi: float = PHI):
        """Half-width of the interval at level 1 − `level` around the mean of n paired differences with variance
        s2 (arrays broadcast): ∞ where the design says nothing (too few seeds; n not a planned look)."""
        s2, n, level = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (s2, n, level)))
        if self.kind == "anytime":
            return confidence_radius(s2, n, level, phi)
        crit = np.empty(s2.shape)
        pairs, inverse = np.unique(np.stack([n.ravel(), level.ravel()]), axis=1, return_inverse=True)
        values = np.array([self.critical(int(nn), float(lv)) for nn, lv in pairs.T])  # few distinct (n, level)
        crit.ravel()[:] = values[inverse.ravel()]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.isfinite(crit), crit * np.sqrt(s2 / np.maximum(n, 1)), np.inf)

    def critical(self, n: int, level: float) -> float:
        """The t critical value at n seeds for a comparison at level `level` (∞ when the design has no look there)."""
        if n < 2 or not self.planned(n):
            return math.inf
        if self.kind == "fixed":
            return float(stats.t.isf(level / 2, n - 1))
        c = t_boundaries(self.looks, _rounded(level), self.spending)
        return c[self.looks.index(n)]

    def pvalue(self, dbar, s2, n, mu0: float = 0.0, phi: float = PHI):
        """Raw (unadjusted) p-value for the difference being mu0: anytime 1/E_n(mu0) (valid at any stopping time);
        fixed the two-sided paired t; sequential nan (its verdicts come from the repeated intervals)."""
        dbar, s2, n = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (dbar, s2, n)))
        if self.kind == "anytime":
            return np.minimum(1.0, np.exp(-log_evalue(dbar, s2, n, mu0, phi)))
        if self.kind == "sequential":
            return np.full(dbar.shape, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where((dbar - mu0) == 0, 0.0, np.abs(dbar - mu0) * np.sqrt(n / s2))
        return np.where(n >= 2, 2 * stats.t.sf(t, np.maximum(n - 1, 1)), 1.0)


def _rounded(level: float) -> float:
    """Levels as a cache key (Holm's and Bonferroni's levels are α/j: equal ones must hit the same boundaries)."""
    return float(f"{level:.12g}")


ANYTIME = Design()


__all__ = ["ANYTIME", "Design", "KINDS"]
