"""Divergence as an outcome of its own: the paired comparison of two variants' divergence rates, anytime-valid.

Why a rule at all: a variant that diverges on some seeds (its accuracy near chance) gives paired differences that are
far from normal and asymmetric, and the mean difference's normal-model interval then makes false calls far above α
(measured in docs/statistics.md). Where either side diverged on any seed, the report withholds the verdict on the
mean and answers two questions it can answer validly, each at half the comparison's level: does one side diverge
more often (this module), and which is better on the seeds where both trained (the usual interval, on those seeds).

The test: on the seeds both sides finished, a discordant seed is one where exactly one side diverged. If the two
variants diverge equally often (paired: P(only A) = P(only B)), each discordant seed is a fair coin, and the uniform
mixture of the likelihood ratios against 1/2,

    E = 2^(a+b) · a! · b! / (a + b + 1)!     (a, b: discordant seeds where only A, only B diverged),

is a nonnegative martingale with mean 1 (a Bayes factor with a Beta(1, 1) prior), so by Ville's inequality rejecting
when E ≥ 1/level is valid at any look, as the mean's intervals are. Hand-written: one line of log-gamma (scipy).
"""

from __future__ import annotations

import math
from typing import Mapping, Tuple

from scipy.special import gammaln

DIVERGED = "diverged"


def divergence_evalue(only_a: int, only_b: int) -> float:
    """E against equal divergence rates from the discordant seed counts (1 with no discordant seed)."""
    a, b = int(only_a), int(only_b)
    return math.exp((a + b) * math.log(2) + gammaln(a + 1) + gammaln(b + 1) - gammaln(a + b + 2))


def discordant(status_a: Mapping[int, str], status_b: Mapping[int, str], seeds) -> Tuple[int, int]:
    """(seeds where only A diverged, seeds where only B diverged) among `seeds`."""
    da = [status_a.get(s) == DIVERGED for s in seeds]
    db = [status_b.get(s) == DIVERGED for s in seeds]
    return sum(x and not y for x, y in zip(da, db)), sum(y and not x for x, y in zip(da, db))


def divergence_verdict(only_a: int, only_b: int, level: float) -> Tuple[str, float]:
    """('more' | 'less' | 'undecided' — how often A diverges compared with B —, raw p = min(1, 1/E))."""
    e = divergence_evalue(only_a, only_b)
    p = min(1.0, 1.0 / e)
    if e >= 1.0 / level and only_a != only_b:
        return ("more" if only_a > only_b else "less"), p
    return "undecided", p


__all__ = ["DIVERGED", "discordant", "divergence_evalue", "divergence_verdict"]
