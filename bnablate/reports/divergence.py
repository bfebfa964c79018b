"""The report's divergence rule: where either side of a comparison diverged on any seed, its verdict on the mean is
withheld and two questions are answered instead, each at half the comparison's level (so the family's error rate is
kept by the union bound): which side diverges more often (stats.divergence), and which is better on the seeds where
both trained (the family's design, on those seeds). docs/statistics.md, 'Diverged runs'."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict

import pandas as pd

from ..stats import compare_paired
from ..stats.decide import Comparison
from ..stats.divergence import DIVERGED, discordant, divergence_verdict

if TYPE_CHECKING:  # the type only: comparisons.py imports this module
    from .comparisons import FamilyPlan, Settings

def empty() -> Dict[str, object]:
    return {"diverged_a": "", "diverged_b": "", "divergence_verdict": "", "divergence_p_adj": math.nan,
            "n_trained": math.nan, "diff_trained": math.nan, "ci_low_trained": math.nan,
            "ci_high_trained": math.nan, "verdict_trained": ""}


def withhold_if_diverged(summary: pd.DataFrame, i, j, c: Comparison, level: float, settings: "Settings",
                         plan: "FamilyPlan") -> Dict[str, object]:
    """The row's divergence columns; when either group diverged on any of its seeds (not only the paired ones: a
    variant seen diverging is not judged by the normal model anywhere), the withheld verdict and both parts."""
    st_a, st_b = summary.at[i, "_status"], summary.at[j, "_status"]
    out = empty()
    if DIVERGED not in st_a.values() and DIVERGED not in st_b.values():
        return out
    seeds = c.seeds
    only_a, only_b = discordant(st_a, st_b, seeds)
    half = level / 2
    div, p_div = divergence_verdict(only_a, only_b, half)
    trained = [s for s in seeds if st_a.get(s) == "ok" and st_b.get(s) == "ok"]
    va, vb = summary.at[i, "_values"], summary.at[j, "_values"]
    t = compare_paired({s: va[s] for s in trained}, {s: vb[s] for s in trained}, family_size=c.family_size,
                       alpha=settings.alpha, margin=settings.margin, resolution=plan.resolution,
                       higher_is_better=settings.metric.higher_is_better, design=plan.design, level=half)
    n_div_a = sum(st_a.get(s) == DIVERGED for s in seeds)
    n_div_b = sum(st_b.get(s) == DIVERGED for s in seeds)
    out.update(diverged_a=f"{n_div_a}/{len(seeds)}", diverged_b=f"{n_div_b}/{len(seeds)}",
               divergence_verdict=div, divergence_p_adj=min(1.0, p_div * settings.alpha / half),  # ≤ α exactly when decided
               n_trained=t.n, diff_trained=t.diff, ci_low_trained=t.ci_low, ci_high_trained=t.ci_high,
               verdict_trained=t.verdict.value)
    out.update(ci_low=math.nan, ci_high=math.nan, p_adj=math.nan, p_tost_adj=math.nan, verdict="undecided",
               withheld=f"diverged ({summary.at[i, settings.compared]} {n_div_a}/{len(seeds)}, "
                        f"{summary.at[j, settings.compared]} {n_div_b}/{len(seeds)} of the paired seeds): the mean "
                        "is not judged; see divergence_verdict and verdict_trained")
    return out


__all__ = ["empty", "withhold_if_diverged"]
