"""Verdicts: each comparison of a family is better, worse, equivalent or undecided, read off one interval per
comparison — the design's (anytime-valid by default; fixed or group-sequential for a plan) at the family's level
(Bonferroni; Holm's steps for families without a margin) — so every row's interval, p-values and verdict agree, and
the family's error rate stays below α (docs/statistics.md)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .anytime import PHI, log_evalue
from .bootstrap import p_improve
from .designs import ANYTIME, Design
from .power import min_detectable_effect, seeds_needed


class Verdict(str, enum.Enum):
    BETTER = "better"
    WORSE = "worse"
    EQUIVALENT = "equivalent"
    UNDECIDED = "undecided"


# decide()'s codes: +1 / −1 the interval lies above / below 0, 2 inside ±margin, 0 neither
ABOVE, BELOW, INSIDE, OPEN = 1, -1, 2, 0


def difference_variance(d: np.ndarray, resolution: float = 0.0) -> float:
    """Sample variance of paired differences (ddof=1), plus the variance of rounding both sides to a grid of
    step `resolution` (h²/6): accuracies are counts over N test images, so seeds can differ by exactly one image
    every time; without the floor that zero variance would read as certainty (docs/statistics.md, 'Resolution')."""
    return float(np.var(d, ddof=1)) + resolution ** 2 / 6 if len(d) >= 2 else math.nan


def decide(dbar, s2, n, family_size, alpha: float, margin: Optional[float] = None, phi: float = PHI,
           design: Design = ANYTIME, level=None) -> dict:
    """The vectorized core (arrays broadcast): for mean differences `dbar` (A − B) with variance `s2` over `n`
    seeds, in a family of `family_size` comparisons at error rate `alpha`, under `design`:

    code: ABOVE / BELOW when the interval at level 1 − `level` (default α/k, Bonferroni) excludes 0, INSIDE when it
    lies within ±margin (checked first: a difference smaller than the margin is called equivalent even when it is
    also nonzero), OPEN otherwise; ci_low/ci_high: that interval; p: the Bonferroni-adjusted p for Δ = 0 (k × the
    design's raw p: k / E_n(0) for the anytime design); p_raw: unadjusted; p_tost: the same for the margin
    (k × the larger raw p at ±margin), 1 when |dbar| ≥ margin; log_e: log E_n(0) (anytime only, else nan)."""
    dbar, s2, n = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (dbar, s2, n)))
    k = np.asarray(family_size, dtype=float)
    level = alpha / k if level is None else np.asarray(level, dtype=float)
    rad = design.radius(s2, n, level, phi)
    lo, hi = dbar - rad, dbar + rad
    p_raw = design.pvalue(dbar, s2, n, 0.0, phi)
    p = np.minimum(1.0, k * p_raw)
    log_e = log_evalue(dbar, s2, n, 0.0, phi) if design.kind == "anytime" else np.full(dbar.shape, np.nan)
    code = np.where(lo > 0, ABOVE, np.where(hi < 0, BELOW, OPEN))
    if margin is not None:
        far = np.maximum(design.pvalue(dbar, s2, n, margin, phi), design.pvalue(dbar, s2, n, -margin, phi))
        p_tost = np.where(np.abs(dbar) < margin, np.minimum(1.0, k * far), 1.0)
        code = np.where((lo > -margin) & (hi < margin), INSIDE, code)
    else:
        p_tost = np.full_like(p, np.nan)
    return {"code": code, "ci_low": lo, "ci_high": hi, "p": p, "p_raw": p_raw, "p_tost": p_tost, "log_e": log_e}


def verdict_of(code: int, higher_is_better: bool = True) -> Verdict:
    if code == INSIDE:
        return Verdict.EQUIVALENT
    if code == OPEN:
        return Verdict.UNDECIDED
    return Verdict.BETTER if (code == ABOVE) == higher_is_better else Verdict.WORSE


@dataclass(frozen=True)
class Comparison:
    """One comparison A vs B over the seeds both have, every number in the metric's units (A − B)."""
    n: int  # paired seeds
    seeds: List[int]
    lost: List[int]  # seeds present on one side only (failed, missing, non-finite): left out of the pairing
    family_size: int
    diff: float
    ci_low: float  # the anytime-valid interval at level 1 − α/k: the verdict is read off it
    ci_high: float
    p: float  # Bonferroni-adjusted anytime-valid p for no difference
    p_tost: float  # Bonferroni-adjusted anytime-valid p for a difference of at least the margin
    e_value: float  # E_n(0): the evidence against no difference (1/α·k is the boundary)
    verdict: Verdict
    effect_dz: float  # mean difference / sd of differences (resolution floor included)
    sd: float
    mde: float  # fixed design, this many seeds: smallest difference detected with power 0.8 at α/k
    seeds_needed_fixed: float  # fixed design: seeds to decide either way (power 0.8) were the observed difference true
    seeds_needed: float  # this procedure: seeds to decide were the observed difference and spread true (projection)
    p_improve: float  # fraction of paired seeds on which A beats B (ties ½), with a seed bootstrap CI
    p_improve_low: float
    p_improve_high: float
    extra: Dict[str, float] = field(default_factory=dict)


def compare_paired(a: Dict[int, float], b: Dict[int, float], family_size: int = 1, alpha: float = 0.05,
                   margin: Optional[float] = None, resolution: float = 0.0, higher_is_better: bool = True,
                   design: Design = ANYTIME, level: Optional[float] = None) -> Comparison:
    """A vs B on the seeds both have finite values for (seed-matched runs share init and batch order, so the
    differences are paired); seeds on one side only are listed in `lost`, never compared unpaired. `level`: the
    interval's 1 − level (default α/k; Holm's step for families without a margin)."""
    fa = {int(s): float(v) for s, v in a.items() if v is not None and math.isfinite(float(v))}
    fb = {int(s): float(v) for s, v in b.items() if v is not None and math.isfinite(float(v))}
    seeds = sorted(set(fa) & set(fb))
    lost = sorted((set(a) | set(b)) - set(seeds))
    d = np.array([fa[s] - fb[s] for s in seeds])
    n = len(d)
    dbar = float(d.mean()) if n else math.nan
    s2 = difference_variance(d, resolution)
    level = alpha / family_size if level is None else level
    out = decide(dbar if n else 0.0, s2 if n >= 2 else 1.0, n, family_size, alpha, margin, design=design, level=level)
    sd = math.sqrt(s2) if n >= 2 else math.nan
    code = int(out["code"]) if n >= 2 else OPEN
    verdict = verdict_of(code, higher_is_better)
    undecided = verdict is Verdict.UNDECIDED
    pi = p_improve(d, higher_is_better) if n else (math.nan, math.nan, math.nan)
    fixed_needed = seeds_needed(dbar, sd, level, margin) if undecided and n >= 2 else math.nan
    return Comparison(
        n=n, seeds=seeds, lost=lost, family_size=family_size, diff=dbar,
        ci_low=float(out["ci_low"]) if n >= 2 else -math.inf, ci_high=float(out["ci_high"]) if n >= 2 else math.inf,
        p=float(out["p"]) if n >= 2 else 1.0, p_tost=float(out["p_tost"]) if (n >= 2 and margin) else
        (1.0 if margin else math.nan), e_value=float(np.exp(out["log_e"])) if n >= 2 else 1.0,
        verdict=verdict, effect_dz=dbar / sd if n >= 2 and sd > 0 else math.nan, sd=sd,
        mde=min_detectable_effect(n, sd, level) if undecided else math.nan,
        seeds_needed_fixed=fixed_needed,
        # the anytime rule's own projection; a planned design's answer is the fixed design's (its budget is declared)
        seeds_needed=(projected_seeds(dbar, s2, family_size, alpha, margin) if design.kind == "anytime" else
                      fixed_needed) if undecided and n >= 2 else math.nan,
        p_improve=pi[0], p_improve_low=pi[1], p_improve_high=pi[2], extra={"p_raw": float(out["p_raw"])
                                                                          if n >= 2 else 1.0})


def projected_seeds(diff: float, s2: float, family_size: int, alpha: float, margin: Optional[float] = None,
                    n_max: int = 2000) -> float:
    """Seeds this procedure would need to decide if the observed mean difference and variance held (a plug-in
    projection, not a guarantee): the first n at which decide() leaves OPEN; ∞ within n_max."""
    if not (math.isfinite(diff) and math.isfinite(s2)):
        return math.nan
    n = np.arange(2, n_max + 1)
    codes = decide(diff, s2, n, family_size, alpha, margin)["code"]
    hit = np.nonzero(codes != OPEN)[0]
    return float(n[hit[0]]) if len(hit) else math.inf


def holm(p_raw: Sequence[float], alpha: float) -> Tuple[np.ndarray, np.ndarray]:
    """Holm's step-down over one family's raw p-values: (adjusted p-values — statsmodels' multipletests — and the
    level each comparison's interval is read at). A rejected comparison at step j (0-based, ascending p) shows its
    interval at 1 − α/(k − j), which excludes 0 because that step rejected it; the others show theirs at the level
    of the first step that did not reject, 1 − α/(k − r), which contains 0 for every one of them. So a row's interval,
    adjusted p and verdict agree. The intervals are not simultaneous (Strassburger & Bretz 2008): Holm's guarantee
    is for the better/worse calls, which is why only families without a margin (no equivalence calls) use it."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_raw, dtype=float)
    k = len(p)
    adjusted = multipletests(p, alpha=alpha, method="holm")[1] if k else p
    order = np.argsort(p, kind="stable")
    rejected = int(np.sum(adjusted <= alpha))
    levels = np.empty(k)
    for step, i in enumerate(order):
        levels[i] = alpha / (k - min(step, rejected))
    return adjusted, levels
