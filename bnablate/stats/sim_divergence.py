"""The divergence rule under simulation: variants that diverge on some seeds (their metric at chance) against a
baseline that never does, run as `sweep --until-decided` runs them (a look per seed, a comparison frozen once
decided), with the report's rule (reports/divergence.py): once a side has diverged on any seed the mean is not
judged; its divergence rate and its metric on the seeds where both trained are, each at half the level.

Rates reported per family: a better/worse call on the mean when the means are equal (the issue's scenario) by the
old rule (the normal-model interval on every seed, diverged ones at chance) and by the new one, whose calls on the
mean can only come before any divergence was seen — no rule can prevent those: such seeds look exactly like a
clean, better variant's; a false divergence call when the rates are equal; a false call on the trained seeds when
the trained means are equal."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .anytime import PHI
from .decide import ABOVE, BELOW, OPEN, decide
from .divergence import divergence_evalue

CHANCE = 0.10


@dataclass
class Scenario:
    name: str
    fail: float  # each variant's divergence rate per seed
    base_fail: float  # the baseline's
    gain: float  # a variant's advantage over the baseline on seeds where it trains (metric units)
    sd: float = 0.005
    mean: float = 0.90

    def draw(self, rng, reps: int, seeds: int, k: int):
        """(values (reps, seeds, k + 1), diverged (reps, seeds, k + 1)); group 0 is the baseline."""
        fail = np.r_[self.base_fail, np.full(k, self.fail)]
        div = rng.random((reps, seeds, k + 1)) < fail
        trained = self.mean + np.r_[0.0, np.full(k, self.gain)] + self.sd * rng.standard_normal((reps, seeds, k + 1))
        return np.where(div, CHANCE + 0.005 * rng.standard_normal(div.shape), trained), div


def equal_means(fail: float, base_fail: float = 0.0, mean: float = 0.90) -> float:
    """The trained-seed gain that makes a variant diverging at `fail` equal the baseline's mean (at chance when
    diverged): (1 − f)(μ + g) + f·c = (1 − f₀)μ + f₀·c."""
    return ((1 - base_fail) * mean + base_fail * CHANCE - fail * CHANCE) / (1 - fail) - mean


def simulate(sc: Scenario, k: int = 1, reps: int = 4000, n0: int = 3, n_max: int = 20, alpha: float = 0.05,
             seed: int = 0, phi: float = PHI) -> dict:
    rng = np.random.default_rng(seed)
    v, div = sc.draw(rng, reps, n_max, k)
    mean_call = np.zeros((reps, k), bool)  # a better/worse call on the mean (new rule: only while nothing diverged)
    old_call = np.zeros((reps, k), bool)  # the old rule's: the normal-model interval on every seed
    old_done = np.zeros((reps, k), bool)
    div_call = np.zeros((reps, k), bool)
    trained_call = np.zeros((reps, k), bool)
    done = np.zeros((reps, k), bool)
    half = alpha / k / 2
    for n in range(n0, n_max + 1):
        d = v[:, :n, 1:] - v[:, :n, :1]
        seen = div[:, :n, 1:].any(1) | div[:, :n, :1].any(1)  # either side diverged on any seed so far
        out = decide(d.mean(1), d.var(1, ddof=1), n, k, alpha, None, phi)
        calls = np.isin(out["code"], (ABOVE, BELOW))
        old_call |= ~old_done & calls
        old_done |= out["code"] != OPEN
        clean = ~done & ~seen
        mean_call |= clean & calls
        done |= clean & calls
        # the withheld comparisons: their two parts, each at half the level
        only_a = (div[:, :n, 1:] & ~div[:, :n, :1]).sum(1)
        only_b = (div[:, :n, :1] & ~div[:, :n, 1:]).sum(1)
        e = np.vectorize(divergence_evalue)(only_a, only_b)
        withheld = ~done & seen
        dcall = withheld & (e >= 1 / half) & (only_a != only_b)
        both = ~div[:, :n, 1:] & ~div[:, :n, :1]  # (reps, n, k) seeds where both trained
        m = both.sum(1)
        dd = np.where(both, d, 0.0)
        tm = dd.sum(1) / np.maximum(m, 1)
        tv = np.where(both, (d - tm[:, None, :]) ** 2, 0.0).sum(1) / np.maximum(m - 1, 1)
        tcode = decide(tm, np.where(m >= 2, tv, 1.0), np.maximum(m, 1), k, alpha, None, phi, level=half)["code"]
        tcall = withheld & (m >= 2) & (tcode != OPEN)
        div_call |= dcall
        trained_call |= tcall
        done |= dcall & tcall  # both parts decided: the comparison stops getting seeds
        if done.all() and old_done.all():
            break
    return {"mean_call": float(mean_call.any(1).mean()), "old_call": float(old_call.any(1).mean()),
            "div_call": float(div_call.any(1).mean()), "trained_call": float(trained_call.any(1).mean())}


def scenarios():
    """The issue's two cases (same mean, 1 in 5 and 1 in 20), and the two nulls the rule's parts answer."""
    return [Scenario("diverges 1 in 5, same mean as the baseline", 0.2, 0.0, equal_means(0.2)),
            Scenario("diverges 1 in 20, same mean as the baseline", 0.05, 0.0, equal_means(0.05)),
            Scenario("both diverge 1 in 5, equal when trained", 0.2, 0.2, 0.0),
            Scenario("both diverge 1 in 3, equal when trained", 1 / 3, 1 / 3, 0.0)]


def table(reps: int = 4000) -> str:
    lines = ["| scenario | k | mean called better/worse: old rule | new rule (all before any divergence was seen) | "
             "divergence call | call on trained seeds |", "|:--|--:|--:|--:|--:|--:|"]
    for sc in scenarios():
        for k in (1, 7):
            r = simulate(sc, k, reps)
            equal_rates = math.isclose(sc.fail, sc.base_fail)
            lines.append(f"| {sc.name} | {k} | {r['old_call']:.4f} | {r['mean_call']:.4f} | "
                         f"{r['div_call']:.4f}{'' if equal_rates else ' (true difference)'} | "
                         f"{r['trained_call']:.4f}{' (true difference)' if sc.gain else ''} |")
    return "\n".join(lines)


__all__ = ["CHANCE", "Scenario", "equal_means", "scenarios", "simulate", "table"]
