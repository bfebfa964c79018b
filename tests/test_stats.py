"""bnablate.stats against independent computations: the e-value against numerical integration of its Bayes factor,
its mean of 1 under the null, the interval against numerical inversion, degenerate data, pairing, power, survival,
bootstraps and per-group intervals."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from statsmodels.stats.power import TTestPower

from bnablate.stats import (Verdict, compare_paired, confidence_radius, km_median, log_evalue, mean_ci,
                            min_detectable_effect, seeds_needed)
from bnablate.stats.bootstrap import p_improve, seeds_and_tests
from bnablate.stats.decide import decide, projected_seeds


def _bayes_factor_by_integration(x, mu0=0.0, phi=1.0):
    """BF of μ − μ0 = δσ, δ ~ N(0, 1/φ), vs μ = μ0, with p(σ) ∝ 1/σ under both, integrated numerically."""
    y = np.asarray(x) - mu0
    n, ybar, ss = len(y), y.mean(), float((y ** 2).sum())

    def lik(mu, s):  # N(y | mu, s²) up to the (2π)^(-n/2) both hypotheses share
        return s ** -n * math.exp(-(ss - 2 * mu * n * ybar + n * mu * mu) / (2 * s * s))
    h0 = integrate.quad(lambda s: lik(0.0, s) / s, 0, np.inf)[0]
    h1 = integrate.dblquad(lambda d, s: lik(d * s, s) / s * stats.norm.pdf(d, scale=1 / math.sqrt(phi)),
                           0, np.inf, -12, 12)[0]
    return h1 / h0


@pytest.mark.parametrize("x,mu0", [([0.3, 0.1, 0.5, 0.2], 0.0), ([1.1, 0.4, 0.9, 1.6, 0.7, 1.2], 0.5),
                                   ([-0.2, 0.05, 0.1], 0.0)])
def test_e_value_is_the_bayes_factor_it_claims(x, mu0):
    x = np.array(x)
    closed = math.exp(float(log_evalue(x.mean(), x.var(ddof=1), len(x), mu0)))
    assert closed == pytest.approx(_bayes_factor_by_integration(x, mu0), rel=1e-4)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_e_value_has_mean_one_under_the_null(n):
    """E_n is a function of the t statistic; under H0 t has Student's t law with n − 1 df, and E[E_n] = 1 (it is a
    likelihood ratio), which is what makes P(sup E_n ≥ 1/α) ≤ α (Ville)."""
    def e_of_t(t):
        return math.exp(float(log_evalue(t, n, n)))  # dbar = t, s2 = n, count n → t statistic t
    mean = integrate.quad(lambda t: e_of_t(t) * stats.t.pdf(t, n - 1), -np.inf, np.inf, limit=200)[0]
    assert mean == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("n,alpha", [(5, 0.05), (8, 0.05 / 7), (20, 0.01)])
def test_interval_is_the_set_where_the_e_value_stays_below_one_over_alpha(n, alpha):
    rng = np.random.default_rng(n)
    d = rng.normal(0.3, 1.0, n)
    dbar, s2 = d.mean(), d.var(ddof=1)
    rad = float(confidence_radius(s2, n, alpha))
    edge = optimize.brentq(lambda mu: float(log_evalue(dbar, s2, n, mu)) - math.log(1 / alpha), dbar, dbar + 50)
    assert dbar + rad == pytest.approx(edge, rel=1e-9)


def test_interval_is_unbounded_while_even_an_infinite_t_cannot_reach_the_boundary():
    assert math.isinf(float(confidence_radius(1.0, 3, 0.05)))  # φ = 1: E_3 ≤ 1 + 3 = 4 < 20
    assert float(log_evalue(0.5, 0.0, 3)) == pytest.approx(math.log(4.0))  # the bound −(ν/2)·log r, r = 1/4
    assert float(confidence_radius(0.0, 8, 0.05)) == 0.0 and math.isfinite(float(confidence_radius(1.0, 5, 0.05)))


def test_one_image_per_seed_is_not_a_certain_difference():
    """The issue's degenerate case: 358/357, 356/355, 357/356 of 359 gave p = 1.8e-28 and an effect of 4e13."""
    a = {0: 358 / 359, 1: 356 / 359, 2: 357 / 359}
    b = {0: 357 / 359, 1: 355 / 359, 2: 356 / 359}
    c = compare_paired(a, b, resolution=1 / 359, margin=0.01)
    assert c.verdict is Verdict.UNDECIDED and c.p > 0.3 and math.isfinite(c.effect_dz) and c.effect_dz < 5
    assert math.isinf(c.ci_low) and c.seeds_needed >= 4
    # exactly equal float differences (a continuous metric): bounded evidence, no error
    same = compare_paired({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.5, 1: 1.5, 2: 2.5})
    assert same.verdict is Verdict.UNDECIDED and same.e_value == pytest.approx(4.0)


def test_one_or_no_paired_seed_is_undecided_and_pairs_keep_their_seeds():
    assert compare_paired({0: 0.9}, {0: 0.8}).verdict is Verdict.UNDECIDED
    assert compare_paired({}, {}).n == 0
    # the case: no_bn {340, 345, diverged without a value} vs bn {341, 346, 322}: bn +1 image at both shared
    # seeds; the pairing keeps seeds 0 and 1 (Δ = −1 image), never an unpaired test over all survivors
    no_bn = {0: 340 / 359, 1: 345 / 359, 2: math.nan}
    bn = {0: 341 / 359, 1: 346 / 359, 2: 322 / 359}
    c = compare_paired(no_bn, bn, resolution=1 / 359)
    assert c.n == 2 and c.seeds == [0, 1] and c.lost == [2] and c.diff == pytest.approx(-1 / 359)


def test_verdicts_follow_the_interval_and_the_direction():
    rng = np.random.default_rng(0)
    base = {s: 0.90 + 0.005 * rng.standard_normal() for s in range(10)}
    up = {s: v + 0.05 + 0.002 * rng.standard_normal() for s, v in base.items()}
    near = {s: v + 0.001 * rng.standard_normal() for s, v in base.items()}
    better = compare_paired(up, base, margin=0.01)
    assert better.verdict is Verdict.BETTER and better.ci_low > 0 and better.p <= 0.05
    assert compare_paired(base, up, margin=0.01).verdict is Verdict.WORSE
    assert compare_paired(up, base, higher_is_better=False).verdict is Verdict.WORSE  # a loss: larger is worse
    eq = compare_paired(near, base, margin=0.01)
    assert eq.verdict is Verdict.EQUIVALENT and -0.01 < eq.ci_low and eq.ci_high < 0.01 and eq.p_tost <= 0.05
    assert compare_paired(near, base).verdict is Verdict.UNDECIDED  # no margin: no equivalence call
    # the family's Bonferroni level widens the interval
    assert compare_paired(up, base, family_size=7).ci_low < better.ci_low


def test_decide_is_vectorized_and_matches_the_scalar_comparison():
    rng = np.random.default_rng(1)
    a = {s: rng.normal(0.9, 0.01) for s in range(6)}
    b = {s: rng.normal(0.88, 0.01) for s in range(6)}
    c = compare_paired(a, b, family_size=3, margin=0.01)
    d = np.array([a[s] - b[s] for s in range(6)])
    out = decide(np.array([d.mean()] * 2), np.array([d.var(ddof=1)] * 2), 6, 3, 0.05, 0.01)
    assert out["ci_low"][0] == pytest.approx(c.ci_low) and out["p"][1] == pytest.approx(c.p)
    assert out["p_tost"][0] == pytest.approx(c.p_tost)


def test_power_numbers_come_from_statsmodels():
    assert min_detectable_effect(5, 0.02, 0.05) == pytest.approx(
        TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8) * 0.02)
    assert seeds_needed(0.01, 0.01, 0.05) == math.ceil(TTestPower().solve_power(effect_size=1.0, alpha=0.05, power=0.8))
    assert math.isinf(seeds_needed(0.0, 0.01, 0.05))  # no difference and no margin: nothing to decide
    # equivalence within ±1 point of a true 0 difference with sd 0.5 points: TOST at α = 0.05 needs a handful
    tost = seeds_needed(0.0, 0.005, 0.05, margin=0.01)
    n = np.arange(2, 50)
    p1 = TTestPower().power(effect_size=2.0, nobs=n, alpha=0.05, alternative="larger")
    assert tost == n[np.nonzero(2 * p1 - 1 >= 0.8)[0][0]]
    assert math.isinf(projected_seeds(0.0, 1e-4, 1, 0.05))
    assert projected_seeds(0.05, 1e-4, 1, 0.05) == 5  # a clear difference: the rule's earliest decision at φ = 1


def test_kaplan_meier_median_counts_runs_that_never_reach():
    # 5 runs: 10, 20, 30 steps to target, two never reached by 40 → S(t) = 0.8, 0.6, 0.4: the median is where S
    # first drops below 1/2 (statsmodels' and SAS's convention), 30; the mean of the three that reached is 20
    assert km_median([10, 20, 30, 40, 40], [True, True, True, False, False]) == 30
    # the mean of the lucky ones would be 15; with three of four never reaching, the median is not observed
    assert math.isnan(km_median([10, 40, 40, 40], [True, False, False, False]))
    assert km_median([30, math.inf, 10], [True, False, True]) == 30  # a diverged run is censored after all others


def test_probability_of_improvement_and_its_bootstrap_are_deterministic():
    d = np.array([0.01, 0.02, 0.0, -0.01, 0.03])
    p, lo, hi = p_improve(d)
    assert p == pytest.approx((3 + 0.5) / 5) and 0 <= lo <= p <= hi <= 1
    assert p_improve(d) == (p, lo, hi)  # a fixed bootstrap seed: reports rebuild byte for byte
    assert p_improve(-d, higher_is_better=False)[0] == pytest.approx(p)


def test_bootstrap_over_seeds_and_test_images_pairs_the_images():
    rng = np.random.default_rng(2)
    a = rng.random((5, 2000)) < 0.9
    b = a.copy()
    flip = rng.random((5, 2000)) < 0.05  # b disagrees with a on 5 % of images, with no net difference expected
    b[flip] = ~b[flip]
    tb = seeds_and_tests(a, b)
    assert tb.churn == pytest.approx(flip.mean())
    obs = (a.mean(1) - b.mean(1)).mean()
    assert tb.diff_low <= obs <= tb.diff_high and tb.diff_high - tb.diff_low < 0.03
    assert seeds_and_tests(a, b) == tb


def test_group_interval_respects_resolution_and_range():
    est = mean_ci([358 / 359] * 3, resolution=1 / 359, bounds=(0.0, 1.0))
    assert est.ci_high - est.ci_low > 0  # no zero-width interval from three seeds at 358/359
    assert est.ci_high <= 1.0  # clipped to the metric's range
    two = mean_ci([0.99, 0.93], bounds=(0.0, 1.0))
    assert two.ci_high == 1.0 and two.ci_low > 0.5
    x = [0.91, 0.93, 0.90, 0.95, 0.92]
    plain = mean_ci(x)  # a continuous metric, no bounds: Student's t interval as scipy computes it
    lo, hi = stats.t.interval(0.95, 4, loc=np.mean(x), scale=stats.sem(x))
    assert (plain.ci_low, plain.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert mean_ci([0.8]).n == 1 and math.isnan(mean_ci([0.8]).ci_low) and mean_ci([]).n == 0
