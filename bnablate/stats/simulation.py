"""The decision rule under simulation: false-call rates under the null (sequential looks included), with k equal
variants, at the margin, and the seeds saved against a fixed design; then the planned designs, Holm, the race to
the best and the divergence rule (sim_plans, sim_race, sim_divergence). tests/test_stats_simulation.py and
tests/test_stats_designs.py assert them; `python -m bnablate.stats.simulation` prints the tables
docs/statistics.md quotes (--reps 20000: the planned designs, Holm and divergence at a fifth of that, the race at
a tenth)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from .anytime import PHI
from .decide import ABOVE, BELOW, INSIDE, OPEN, decide, difference_variance
from .designs import ANYTIME, Design
from .power import ttest_power

Generator = Callable[[np.random.Generator, tuple], np.ndarray]  # (rng, (reps, seeds, groups)) → per-seed metrics
IMAGES = 359  # the embedded digits test set: accuracies are multiples of 1/359


def normal(sd: float = 0.005, mean: float = 0.97) -> Generator:
    return lambda rng, size: mean + sd * rng.standard_normal(size)


def heavy_tailed(sd: float = 0.005, mean: float = 0.97, df: float = 3.0) -> Generator:
    """Student t with `df` degrees of freedom, scaled to standard deviation `sd`."""
    scale = sd / math.sqrt(df / (df - 2))
    return lambda rng, size: mean + scale * rng.standard_t(df, size)


def bimodal(sd: float = 0.005, mean: float = 0.97, fail: float = 0.2, chance: float = 0.1) -> Generator:
    """A seed never trains with probability `fail` (accuracy at chance), as no_bn did in repro-lenet-fashion."""
    return lambda rng, size: np.where(rng.random(size) < fail, chance + 0.005 * rng.standard_normal(size),
                                      mean + sd * rng.standard_normal(size))


def rounded(sd: float, mean: float = 0.97, images: int = IMAGES) -> Generator:
    """Accuracies on `images` test images: a normal rounded to the grid 1/images."""
    return lambda rng, size: np.round((mean + sd * rng.standard_normal(size)) * images) / images


def one_image_apart(images: int = IMAGES) -> Generator:
    """The adversarial lattice case: every other group differs from the baseline by exactly ±1 image, ½ each."""
    def draw(rng, size):
        v = np.full(size, 0.97)
        v[..., 1:] += rng.choice([-1.0, 1.0], size=size[:-1] + (size[-1] - 1,)) / images
        return v
    return draw


def shifted(gen: Generator, shift: float) -> Generator:
    """Every group but the first (the baseline) moved by `shift`."""
    def draw(rng, size):
        v = gen(rng, size)
        v[..., 1:] += shift
        return v
    return draw


@dataclass
class Outcome:
    codes: np.ndarray  # (reps, k) decide() code at the stop
    seeds: np.ndarray  # (reps,) seeds used when the last comparison stopped
    stop_seeds: np.ndarray  # (reps, k) seeds at which each comparison stopped

    def rate(self, *codes: int) -> float:
        """Fraction of repetitions in which any comparison ended with one of these codes."""
        return float(np.isin(self.codes, codes).any(1).mean())

    def power(self, code: int = ABOVE) -> float:
        """Fraction of comparisons that ended with this code (the per-comparison power)."""
        return float((self.codes == code).mean())


def sequential(gen: Generator, k: int = 1, reps: int = 4000, n0: int = 3, step: int = 1, n_max: int = 20,
               alpha: float = 0.05, margin: Optional[float] = None, resolution: float = 0.0,
               seed: int = 0, phi: float = PHI, floor: bool = True, design: Design = ANYTIME,
               holm: bool = False) -> Outcome:
    """What `sweep --until-decided` does, on synthetic per-seed metrics: k groups against a baseline (group 0),
    looks at n0, n0 + step, ... seeds (a planned design: at its looks); a comparison stops (its seeds frozen) once
    decided; the sweep stops when all are decided or at the last look. n_max = n0 is the fixed design a plain
    report judges. floor=False drops the resolution floor (to show what it prevents). holm: Holm's step levels over
    the family at every look (families without a margin), instead of Bonferroni's α/k."""
    if design.kind != "anytime":
        looks = list(design.looks)
    else:
        looks = list(range(n0, n_max, step)) + [n_max]
    rng = np.random.default_rng(seed)
    v = gen(rng, (reps, looks[-1], k + 1))
    d = v[:, :, 1:] - v[:, :, :1]  # (reps, seeds, k) paired differences
    codes = np.full((reps, k), OPEN)
    stop = np.full((reps, k), looks[-1])
    done = np.zeros((reps, k), bool)
    dbar_at = np.zeros((reps, k))
    s2_at = np.ones((reps, k))
    n_at = np.full((reps, k), looks[0])
    for n in looks:
        x = d[:, :n, :]
        live = ~done  # decided comparisons keep the seeds they were decided at
        dbar_at[live] = x.mean(1)[live]
        s2_at[live] = (x.var(1, ddof=1) + (resolution ** 2 / 6 if floor else 0.0))[live]  # difference_variance
        n_at[live] = n
        level = holm_levels(design, dbar_at, s2_at, n_at, alpha, phi) if holm and k > 1 else None
        out = decide(dbar_at, s2_at, n_at, k, alpha, margin, phi, design=design, level=level)
        new = ~done & (out["code"] != OPEN)
        codes[new], stop[new] = out["code"][new], n
        done |= new
        if done.all():
            break
    return Outcome(codes, stop.max(1), stop)


def holm_levels(design: Design, dbar, s2, n, alpha: float, phi: float = PHI) -> np.ndarray:
    """Holm's step level for every comparison of every repetition (reps, k), vectorized over repetitions."""
    p = design.pvalue(dbar, s2, n, 0.0, phi)
    k = p.shape[1]
    order = np.argsort(p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, 1)
    ok = sorted_p <= alpha / (k - np.arange(k))
    rejected = np.where(ok.all(1), k, np.argmin(ok, 1))  # the length of the rejected prefix
    step = np.minimum(np.arange(k)[None, :], rejected[:, None])
    levels = np.empty_like(p)
    np.put_along_axis(levels, order, alpha / (k - step), 1)
    return levels


def fixed_design_seeds(effect: float, alpha: float, k: int = 1, power: float = 0.8) -> int:
    """Seeds a fixed paired t-test at α/k needs for `power` against a standardized effect."""
    return int(math.ceil(ttest_power().solve_power(effect_size=effect, alpha=alpha / k, power=power)))


def check_variance_floor() -> None:
    """The simulation's vectorized floor equals the one reports use."""
    d = np.array([1.0, 1.0, 1.0]) / IMAGES
    assert math.isclose(difference_variance(d, 1 / IMAGES), (1 / IMAGES) ** 2 / 6)


SD = 0.005  # 0.5 points: a typical seed-to-seed sd of a small net's accuracy here


def null_scenarios() -> Dict[str, tuple]:
    """name → (generator, resolution): the null cases the tests and docs cover."""
    return {"normal": (normal(SD), 0.0), "heavy-tailed t3": (heavy_tailed(SD), 0.0),
            "bimodal (1 in 5 never trains)": (bimodal(SD), 0.0),
            **{f"rounded to 1/{IMAGES}, sd {sd:g} pts": (rounded(sd / 100), 1 / IMAGES) for sd in (0.2, 0.3, 0.5)}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=20000)
    args = parser.parse_args(argv)
    reps, se = args.reps, math.sqrt(0.05 * 0.95 / args.reps)
    check_variance_floor()
    print(f"{reps} repetitions per row; Monte-Carlo standard error of a rate near 0.05: {se:.4f}\n")
    print("| scenario | design | false better/worse |")
    print("|:--|:--|--:|")
    for name, (gen, res) in null_scenarios().items():
        for design, kw in (("3 seeds, fixed", dict(n_max=3)), ("sequential 3 → 20, a look per seed", {}),
                           ("k = 7 equal variants, 3 → 12", dict(k=7, n_max=12))):
            o = sequential(gen, reps=reps, resolution=res, **kw)
            print(f"| {name} | {design} | {o.rate(ABOVE, BELOW):.4f} |")
    print("\n| rounded to 1/359, no resolution floor | design | false better/worse |")
    print("|:--|:--|--:|")
    for sd in (0.2, 0.3, 0.5):
        for design, kw in (("sequential 3 → 20, a look per seed", {}), ("k = 7 equal variants, 3 → 12",
                                                                       dict(k=7, n_max=12))):
            o = sequential(rounded(sd / 100), reps=reps, resolution=1 / IMAGES, floor=False, **kw)
            print(f"| sd {sd:g} pts | {design} | {o.rate(ABOVE, BELOW):.4f} |")
    print("\n| every difference exactly ±1 image (adversarial) | φ | false better/worse |")
    print("|:--|--:|--:|")
    for phi in (0.1, 0.25, 1.0):
        for k in (1, 7):
            o = sequential(one_image_apart(), k=k, reps=reps, n_max=30, resolution=1 / IMAGES, phi=phi)
            print(f"| k = {k}, looks at every seed 3 → 30 | {phi:g} | {o.rate(ABOVE, BELOW):.4f} |")
    print("\n| true difference | design | false equivalent |")
    print("|:--|:--|--:|")
    for name, gen, res in (("normal, Δ = margin", shifted(normal(SD), 0.01), 0.0),
                           ("rounded sd 0.3, Δ = margin", shifted(rounded(0.003), 0.01), 1 / IMAGES)):
        o = sequential(gen, reps=reps, margin=0.01, resolution=res)
        print(f"| {name} | sequential 3 → 20 | {o.rate(INSIDE):.4f} |")
    print("\n| planned effect | fixed design (power 0.8) | sequential cap | power at planned | true effect | "
          "mean seeds |")
    print("|:--|--:|--:|--:|--:|--:|")
    for k in (1, 7):
        for planned in (1.0, 1.5):
            n_fix = fixed_design_seeds(planned, 0.05, k)
            cap = 2 * n_fix
            at_plan = sequential(shifted(normal(1 / math.sqrt(2)), planned), k=k, reps=reps // 4, n_max=cap)
            for true in (planned, 2 * planned, 3 * planned):
                o = sequential(shifted(normal(1 / math.sqrt(2)), true), k=k, reps=reps // 4, n_max=cap)
                print(f"| δ = {planned:g} (k = {k}) | {n_fix} | {cap} | {at_plan.power():.2f} | δ = {true:g} | "
                      f"{o.seeds.mean():.1f} |")
    from . import sim_divergence, sim_plans, sim_race  # each builds on this module's generators

    print("\n" + sim_plans.table(reps // 5))
    print("\n" + sim_plans.holm_table(reps // 5))
    print("\n" + sim_race.table(reps // 10))
    print("\n" + sim_divergence.table(reps // 5))


if __name__ == "__main__":
    main()
