"""`--goal best` against all-pairs `--until-decided`, simulated: g variants with correlated per-seed metrics (a seed
shares part of its luck across variants, as paired seeds do), a seed per look to every variant still active, the
project's own intervals (decide) and race (race.py) vectorized over repetitions. Reports the runs each goal trains
and how often its claim is wrong (for the race: the certified variant is more than the margin below the best; for
all pairs: any verdict false)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .anytime import PHI
from .decide import ABOVE, BELOW, INSIDE, OPEN, decide
from .designs import ANYTIME, Design
from .minimum import fewest_seeds


@dataclass
class RaceOutcome:
    runs: np.ndarray  # (reps,) runs trained (seeds summed over variants)
    wrong: np.ndarray  # (reps,) the claim (race) or any verdict (all pairs) is false
    decided: np.ndarray  # (reps,) stopped because the goal was met (not the cap)

    def summary(self) -> dict:
        return {"runs": float(self.runs.mean()), "wrong": float(self.wrong.mean()),
                "decided": float(self.decided.mean())}


def correlated(means: Sequence[float], sd: float, rho: float):
    """Per-seed metrics: mean_g + sd·(√ρ·z_seed + √(1 − ρ)·e_{seed,g}); paired differences have sd √(2(1 − ρ))·sd."""
    means = np.asarray(means, dtype=float)

    def draw(rng, size):  # size: (reps, seeds, g)
        shared = rng.standard_normal(size[:2] + (1,))
        return means + sd * (math.sqrt(rho) * shared + math.sqrt(1 - rho) * rng.standard_normal(size))
    return draw


def simulate_goal(means: Sequence[float], sd: float, rho: float, margin: float, goal: str = "best",
                  reps: int = 2000, alpha: float = 0.05, cap: int = 400, seed: int = 0, design: Design = ANYTIME,
                  phi: float = PHI) -> RaceOutcome:
    """goal 'best': survivors get seeds until one is certified within the margin of every other survivor; goal
    'pairs': the groups of undecided pairs get seeds until every pair is decided. Both start at the fewest seeds
    that can decide the family (minimum.py) and add one seed per look, up to `cap` seeds."""
    means = np.asarray(means, dtype=float)
    g = len(means)
    pairs = list(itertools.combinations(range(g), 2))
    k = len(pairs)
    rng = np.random.default_rng(seed)
    v = correlated(means, sd, rho)(rng, (reps, cap, g))
    ia, ib = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    d = v[:, :, ia] - v[:, :, ib]  # (reps, seeds, k)
    c1 = np.concatenate([np.zeros((reps, 1, k)), np.cumsum(d, 1)], 1)  # running sums: a pair's stats at any n
    c2 = np.concatenate([np.zeros((reps, 1, k)), np.cumsum(d * d, 1)], 1)
    n = np.full((reps, g), min(fewest_seeds(k, alpha, design, phi), cap))
    done = np.zeros(reps, bool)
    wrong = np.zeros(reps, bool)
    decided = np.zeros(reps, bool)
    rows = np.arange(reps)[:, None]
    while True:
        m = np.minimum(n[:, ia], n[:, ib])  # (reps, k): a pair is paired on the seeds both sides ran
        s1, s2 = c1[rows, m, np.arange(k)], c2[rows, m, np.arange(k)]
        dbar = s1 / m
        var = np.maximum((s2 - m * dbar ** 2) / np.maximum(m - 1, 1), 0.0)
        out = decide(dbar, var, m, k, alpha, margin, phi, design=design)
        lo, hi = out["ci_low"], out["ci_high"]
        if goal == "best":
            low = np.full((reps, g, g), -np.inf)  # low[r, x, y]: lower bound of μ_x − μ_y (diagonal: none)
            low[:, ia, ib], low[:, ib, ia] = lo, -hi
            beaten = (low > 0).any(1)  # some h with μ_h − μ_g decided > 0
            surv = ~beaten
            near = (low > -margin) | np.eye(g, dtype=bool)
            certified = surv & (near | ~surv[:, None, :]).all(2)
            met = certified.any(1)
            best = means.max()
            bad = (certified & (means[None, :] < best - margin)).any(1)
            active = surv
        else:
            code = out["code"]
            met = (code != OPEN).all(1)
            truth = means[ia] - means[ib]
            bad = (((code == ABOVE) & (truth <= 0)) | ((code == BELOW) & (truth >= 0)) |
                   ((code == INSIDE) & (np.abs(truth) >= margin))).any(1)
            active = np.zeros((reps, g), bool)
            for j, (a, b) in enumerate(pairs):
                open_ = code[:, j] == OPEN
                active[:, a] |= open_
                active[:, b] |= open_
        newly = ~done & (met | (n.max(1) >= cap))
        wrong[newly], decided[newly] = bad[newly], met[newly]
        done |= newly
        if done.all():
            break
        grow = active & ~done[:, None] & (n < cap)
        n = n + grow
        if not grow.any():  # nothing left to add (every live repetition at the cap)
            left = ~done
            wrong[left], decided[left] = bad[left], met[left]
            break
    return RaceOutcome(n.sum(1).astype(float), wrong, decided)


SIX = (65.0, 64.5, 63.0, 60.0, 57.0, 55.0)  # the six variants (points), sd 3, ρ = 0.5, margin 1


def table(reps: int = 2000) -> str:
    lines = ["| goal | runs (mean) | claim wrong | decided before the cap |", "|:--|--:|--:|--:|"]
    for goal in ("pairs", "best"):
        # all pairs: the cap high enough that nearly every repetition decides (the pair 0.5 apart needs hundreds)
        o = simulate_goal(SIX, 3.0, 0.5, 1.0, goal, reps=reps if goal == "best" else max(reps // 4, 100),
                          cap=400 if goal == "best" else 800)
        s = o.summary()
        lines.append(f"| {'all pairs until decided' if goal == 'pairs' else 'race to the best'} | {s['runs']:.0f} | "
                     f"{s['wrong']:.4f} | {s['decided']:.3f} |")
    return "\n".join(lines)


__all__ = ["RaceOutcome", "SIX", "correlated", "simulate_goal", "table"]
