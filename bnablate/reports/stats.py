"""Statistics across seeds with scipy: t confidence intervals, paired/Welch comparisons, Holm correction, effect sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for n < 2
    ci_low: float  # Student-t confidence interval of the mean; nan for n < 2
    ci_high: float


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean with a Student-t CI. One value gives no CI (nan), not an error; no values give all-nan."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    if len(x) == 1:
        return Estimate(1, float(x[0]), math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    if std == 0.0:  # all seeds agree: the interval is the point (scipy would return nan)
        return Estimate(len(x), float(x.mean()), 0.0, float(x.mean()), float(x.mean()))
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    return Estimate(len(x), float(x.mean()), std, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class Comparison:
    test: str  # "paired t" | "Welch t" | "" (too few seeds)
    n: int  # pairs (paired) or the smaller group's size (Welch)
    diff: float  # mean(treatment) - mean(baseline)
    ci_low: float
    ci_high: float
    p: float
    effect_size: float  # Cohen's d_z for paired, Cohen's d (average-variance) for Welch


def compare(treatment: Dict[int, float], baseline: Dict[int, float], confidence: float = 0.95) -> Comparison:
    """Compare seed → value maps. When both sides have exactly the same seeds (≥ 2), seed-matched runs share init
    and batch order, so the test is paired (scipy's ttest_rel); otherwise Welch's unequal-variance t (ttest_ind)."""
    a, b = _finite(treatment), _finite(baseline)
    if len(a) >= 2 and set(a) == set(b):
        seeds = sorted(a)
        x, y = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
        d = x - y
        if np.all(d == d[0]):  # zero variance of the differences: scipy gives nan (all equal) or p=0 (all shifted)
            p = 1.0 if d[0] == 0 else 0.0
            return Comparison("paired t", len(d), float(d[0]), float(d[0]), float(d[0]), p,
                              0.0 if d[0] == 0 else math.copysign(math.inf, d[0]))
        res = stats.ttest_rel(x, y)
        ci = res.confidence_interval(confidence)
        return Comparison("paired t", len(d), float(d.mean()), float(ci.low), float(ci.high), float(res.pvalue),
                          float(d.mean() / d.std(ddof=1)))
    if len(a) >= 2 and len(b) >= 2:
        x, y = np.array(list(a.values())), np.array(list(b.values()))
        diff = float(x.mean() - y.mean())
        pooled = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
        if pooled == 0.0:
            p = 1.0 if diff == 0 else 0.0
            return Comparison("Welch t", min(len(x), len(y)), diff, diff, diff, p,
                              0.0 if diff == 0 else math.copysign(math.inf, diff))
        res = stats.ttest_ind(x, y, equal_var=False)
        ci = res.confidence_interval(confidence)
        return Comparison("Welch t", min(len(x), len(y)), diff, float(ci.low), float(ci.high), float(res.pvalue),
                          diff / pooled)
    diff = (float(np.mean(list(a.values()))) - float(np.mean(list(b.values())))) if a and b else math.nan
    return Comparison("", min(len(a), len(b)), diff, math.nan, math.nan, math.nan, math.nan)


def holm(pvalues: Sequence[Optional[float]]) -> List[float]:
    """Holm–Bonferroni step-down adjusted p-values (nan entries stay nan and do not count as tests).
    Sorted ascending, p_(i) is multiplied by (m - i) for i = 0..m-1, made monotone, capped at 1."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def _finite(d: Dict[int, float]) -> Dict[int, float]:
    return {int(k): float(v) for k, v in d.items() if v is not None and math.isfinite(float(v))}
