"""Bootstrap summaries of a paired comparison: the probability of improvement over seeds (rliable-style, Agarwal et
al. 2021) and, when runs recorded which test images they got right, a bootstrap over seeds *and* test images with
the prediction churn between two variants (Bouthillier et al. 2021)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Tuple

import numpy as np

RESAMPLES = 1000  # enough for a percentile interval's ends to be stable to ~1 percentage point; fixed seed below


def wins(d: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Per seed: 1 where A beat B, 0 where B beat A, ½ on a tie."""
    better = d > 0 if higher_is_better else d < 0
    return np.where(d == 0, 0.5, better.astype(float))


def p_improve(d: np.ndarray, higher_is_better: bool = True, confidence: float = 0.95,
              seed: int = 0) -> Tuple[float, float, float]:
    """(P(A better than B) over paired seeds, percentile bootstrap CI over seeds). With few seeds the interval is
    optimistic (all seeds agreeing gives [1, 1]): it describes the seeds at hand; verdicts come from decide()."""
    w = wins(np.asarray(d, dtype=float), higher_is_better)
    if len(w) < 2:
        return (float(w.mean()) if len(w) else math.nan), math.nan, math.nan
    from scipy import stats  # here, not at import: scipy.stats costs ~1 s of every command's start-up

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's DegenerateDataWarning when every seed agrees
        ci = stats.bootstrap((w,), np.mean, n_resamples=RESAMPLES, confidence_level=confidence,
                             method="percentile", random_state=np.random.default_rng(seed)).confidence_interval
    return float(w.mean()), float(ci.low), float(ci.high)


@dataclass(frozen=True)
class TestSetBootstrap:
    churn: float  # mean over seeds of the fraction of test images one variant gets right and the other wrong
    diff_low: float  # percentile CI of the accuracy difference, resampling seeds and test images
    diff_high: float
    p_improve_low: float  # the same for P(A better than B)
    p_improve_high: float


def seeds_and_tests(a: np.ndarray, b: np.ndarray, higher_is_better: bool = True, confidence: float = 0.95,
                    seed: int = 0) -> TestSetBootstrap:
    """a, b: (seeds, test images) bool, which images each paired run classified correctly (row i of a and b share a
    seed). Each resample draws seeds with replacement and, independently, test images with replacement — the same
    images for both variants, so the pairing by image is kept — and recomputes the accuracy difference. Hand-written
    because scipy.stats.bootstrap resamples one level only; this is its two-level (nested) form."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n, images = a.shape
    rng = np.random.default_rng(seed)
    d = a.astype(np.float32) - b.astype(np.float32)  # (n, N) ∈ {−1, 0, 1}
    per_seed = np.empty((n, RESAMPLES))
    for lo in range(0, RESAMPLES, 100):  # 100 resamples of N image counts at a time: (100, N) int64
        w = rng.multinomial(images, np.full(images, 1.0 / images), size=min(100, RESAMPLES - lo))
        per_seed[:, lo:lo + len(w)] = d @ w.T.astype(np.float32) / images
    pick = rng.integers(0, n, size=(RESAMPLES, n))  # seeds drawn per resample
    draws = per_seed[pick, np.arange(RESAMPLES)[:, None]]  # (R, n) differences of the drawn seeds
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    dlo, dhi = np.percentile(draws.mean(1), q)
    plo, phi = np.percentile(wins(draws, higher_is_better).mean(1), q)
    return TestSetBootstrap(float((a != b).mean()), float(dlo), float(dhi), float(plo), float(phi))
