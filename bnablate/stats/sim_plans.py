"""Planned designs under simulation: each design sized by forecast.py for power 0.8 at a planned standardized
effect, then run as `sweep --design … --until-decided` runs it on k comparisons against a baseline — the family-wise
false-call rate with no true difference, the false `equivalent` rate at a true difference of exactly the margin, the
power and the mean seeds at the planned effect; and Holm against Bonferroni for families without a margin."""

from __future__ import annotations

import math
from typing import List

from .decide import ABOVE, BELOW, INSIDE
from .designs import ANYTIME, Design
from .forecast import scaled, seeds_for_power
from .minimum import fewest_seeds
from .simulation import normal, sequential, shifted

SD = 1 / math.sqrt(2)  # per-seed sd: paired differences have sd 1, so effects are in units of their sd
SHAPES = {"fixed": Design("fixed", (10,)), "sequential O'Brien–Fleming, 3 looks": Design("sequential", (5, 7, 9)),
          "sequential Pocock, 3 looks": Design("sequential", (5, 7, 9), "pocock"), "anytime-valid": ANYTIME}


def run(design: Design, k: int, shift: float, reps: int, margin=None, seed: int = 0, holm: bool = False):
    n0 = fewest_seeds(k, 0.05, design)
    n_max = design.looks[-1] if design.kind != "anytime" else design_cap(design, k)
    return sequential(shifted(normal(SD), shift), k=k, reps=reps, n0=n0, n_max=n_max, margin=margin, seed=seed,
                      design=design, holm=holm)


_CAPS: dict = {}


def design_cap(design: Design, k: int) -> int:
    return _CAPS.get((design, k), 2 * fewest_seeds(k, 0.05))


def sized(shape: Design, k: int, effect: float) -> Design:
    """The design of this shape with the smallest budget reaching power 0.8 at `effect` (anytime: the cap)."""
    budget = int(seeds_for_power(shape, k, effect))
    if shape.kind == "anytime":
        _CAPS[(shape, k)] = budget
        return shape
    return scaled(shape, budget)


def table(reps: int = 4000, effect: float = 1.0, margin: float = 0.5) -> str:
    lines = [f"| design (sized for power 0.8 at δ = {effect:g}) | k | seeds planned | false better/worse (δ = 0) | "
             f"false equivalent (δ = margin {margin:g}) | power at δ = {effect:g} | mean seeds at δ = {effect:g} |",
             "|:--|--:|:--|--:|--:|--:|--:|"]
    for name, shape in SHAPES.items():
        for k in (1, 7):
            d = sized(shape, k, effect)
            planned = ",".join(map(str, d.looks)) if d.kind != "anytime" else f"≤ {design_cap(d, k)}"
            null = run(d, k, 0.0, reps, margin=margin)
            at_margin = run(d, k, margin, reps, margin=margin, seed=1)
            at_effect = run(d, k, effect, reps, seed=2)
            lines.append(f"| {name} | {k} | {planned} | {null.rate(ABOVE, BELOW):.4f} | {at_margin.rate(INSIDE):.4f} "
                         f"| {at_effect.power():.3f} | {at_effect.seeds.mean():.1f} |")
    return "\n".join(lines)


def holm_table(reps: int = 4000, effect: float = 1.0) -> str:
    """Families without a margin: Holm's step levels against Bonferroni's α/k (anytime-valid, a seed per look)."""
    lines = ["| k | true effects | Bonferroni: false calls / power / mean seeds | Holm: false calls / power / "
             "mean seeds |", "|--:|:--|:--|:--|"]
    for k in (3, 7):
        for label, shift in (("all 0", 0.0), (f"all δ = {effect:g}", effect)):
            res: List[str] = []
            for holm in (False, True):
                o = sequential(shifted(normal(SD), shift), k=k, reps=reps, n0=fewest_seeds(k, 0.05), n_max=40,
                               holm=holm, seed=3)
                res.append(f"{o.rate(ABOVE, BELOW) if shift == 0 else math.nan:.4f} / {o.power():.3f} / "
                           f"{o.seeds.mean():.1f}")
            lines.append(f"| {k} | {label} | {res[0]} | {res[1]} |")
    return "\n".join(lines)


__all__ = ["SHAPES", "holm_table", "run", "sized", "table"]
