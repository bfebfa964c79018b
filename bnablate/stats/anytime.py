"""Anytime-valid paired comparisons: the normal-mixture e-value of the one-sample t-test and its confidence sequence.

For paired differences d_1..d_n ~ N(μ, σ²) with σ unknown, the Bayes factor of H1: μ − μ0 = δσ, δ ~ N(0, 1/φ),
against H0: μ = μ0 (Jeffreys prior on σ under both) depends on the data only through the t-statistic:

    E_n = sqrt(r) · [(1 + t²/ν) / (1 + r·t²/ν)]^((ν+1)/2),   ν = n − 1,  r = φ / (φ + n)

(Gönen et al. 2005; Rouder et al. 2009). Under H0 it is a nonnegative martingale with mean 1 in the filtration of
the scale-invariant data (Lai 1976; Pérez-Ortiz et al. 2024; Lindon et al. 2024, whose `savvi` package computes the
same expression for regression coefficients), so by Ville's inequality P(∃n: E_n ≥ 1/α) ≤ α: rejecting when
E_n ≥ 1/α is valid at any look, however many seeds were added because earlier ones looked promising. Inverting it
gives a confidence sequence with the closed-form radius of `confidence_radius`, valid uniformly over n.

Why hand-written: the formula is four lines; the packages that carry it (savvi, for linear models) pull in cvxpy, and
confseq/expectation either build C++ or need Python ≥ 3.12. tests/test_stats.py checks it against numerical
integration of the Bayes factor and checks its mean of 1 under H0 by simulation.

φ = 1 (a unit-information prior on the standardized effect, savvi's and Lindon et al.'s default): the measured
error rates and seeds saved for this choice are in docs/statistics.md.
"""

from __future__ import annotations

import numpy as np

PHI = 1.0  # prior precision of the standardized effect δ = (μ − μ0)/σ


def _log_ratio(x, r):
    """log((1 + x) / (1 + r·x)) for x = t²/ν ∈ [0, ∞], stable at both ends (→ −log r as x → ∞)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        finite = x * (1 - r) / (1 + r * x)
    return np.log1p(np.where(np.isinf(x), (1 - r) / r, finite))


def log_evalue(dbar, s2, n, mu0=0.0, phi: float = PHI):
    """log E_n for H0: μ = mu0 from the mean `dbar`, variance `s2` (ddof=1) and count `n` of paired differences
    (arrays broadcast). n < 2 gives 0 (no evidence); s2 = 0 with dbar ≠ mu0 gives the bound −(ν/2)·log r."""
    dbar, s2, n = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (dbar, s2, n)))
    nu = np.maximum(n - 1, 1)
    r = phi / (phi + np.maximum(n, 1))
    dev2 = (dbar - mu0) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        t2 = np.where(dev2 == 0, 0.0, dev2 * n / s2)  # dev ≠ 0 with s2 = 0: t² = ∞
    out = 0.5 * np.log(r) + 0.5 * (nu + 1) * _log_ratio(t2 / nu, r)
    return np.where(n >= 2, out, 0.0)


def confidence_radius(s2, n, alpha, phi: float = PHI):
    """Half-width of the (1 − alpha) confidence sequence {μ0: E_n(μ0) < 1/alpha} around the mean: ∞ while even an
    infinite t could not reach 1/alpha (few seeds), 0 for s2 = 0 once it could."""
    s2, n, alpha = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (s2, n, alpha)))
    nu = np.maximum(n - 1, 1)
    r = phi / (phi + np.maximum(n, 1))
    c = (r * alpha ** 2) ** (1 / (nu + 1))  # E_n = 1/alpha solved for x = t²/ν: x = (1 − c)/(c − r)
    ok = (c > r) & (n >= 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(ok, (1 - c) / np.where(ok, c - r, 1.0), np.inf)
        rad = np.sqrt(s2 / np.maximum(n, 1) * nu * x)
    return np.where(ok, np.where(s2 == 0, 0.0, rad), np.inf)
