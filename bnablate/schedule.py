"""When `sweep --until-decided` looks and how many seeds it adds: the design's schedule (anytime: a look per
`--seed-step` seeds, jumping straight to the fewest seeds that can decide; fixed and sequential: the planned looks),
the goal (report.compare: baseline | pairs | best), and every option of it checked before anything trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from .defaults import DEFAULT_MAX_SEEDS, DEFAULT_SEED_STEP, GOALS
from .errors import ConfigError
from .stats.designs import ANYTIME, KINDS, Design
from .stats.groupseq import SPENDING
from .stats.minimum import fewest_seeds


@dataclass(frozen=True)
class Schedule:
    max_seeds: int = DEFAULT_MAX_SEEDS
    seed_step: int = DEFAULT_SEED_STEP
    design: Design = ANYTIME

    def first_count(self, n_seeds: int) -> int:
        """Seeds of the first look: the sweep's own (anytime) or the first planned look."""
        return n_seeds if self.design.kind == "anytime" else self.design.looks[0]

    def next_count(self, n: int, family_size: int, alpha: float) -> Optional[int]:
        """Seeds at the next look after one at n seeds, or None at the budget. Anytime: n + step, but never a look
        below the fewest seeds at which the largest family can decide anything (the looks there are wasted)."""
        if self.design.kind != "anytime":
            later = [x for x in self.design.looks if x > n]
            return later[0] if later else None
        if n >= self.max_seeds:
            return None
        return min(self.max_seeds, max(n + self.seed_step, fewest_seeds(family_size, alpha)))

    def describe(self) -> str:
        if self.design.kind == "fixed":
            return f"one look at {self.max_seeds} seeds (fixed design: the paired t interval)"
        if self.design.kind == "sequential":
            return (f"looks at {', '.join(map(str, self.design.looks))} seeds ({self.design.spending} α-spending; "
                    "repeated confidence intervals)")
        return (f"then, while a comparison is undecided, {self.seed_step} more seed(s) per look for its groups only "
                f"(straight to the fewest seeds that can decide), up to {self.max_seeds} seeds")


def make_schedule(design: str = "anytime", max_seeds: Optional[int] = None, seed_step: int = DEFAULT_SEED_STEP,
                  looks: Sequence[int] = (), spending: str = "obf") -> Schedule:
    """The schedule of `--design/--looks/--max-seeds/--seed-step/--spending`, or ConfigError naming the fix."""
    if design not in KINDS:
        raise ConfigError(f"--design {design!r} is not a design; choose anytime (the default: valid however seeds "
                          "are added), fixed (one look at --max-seeds) or sequential (--looks, α-spending).")
    if seed_step < 1:
        raise ConfigError(f"--seed-step must be ≥ 1 (seeds added per look), got {seed_step}.")
    looks = [int(x) for x in looks]
    if design == "sequential":
        if len(looks) < 2:
            raise ConfigError("--design sequential needs --looks with two or more seed counts, e.g. --looks 5,7,9 "
                              "(the last one is the budget).")
        if looks != sorted(set(looks)) or looks[0] < 2:
            raise ConfigError(f"--looks {','.join(map(str, looks))}: the looks must be increasing seed counts of at "
                              f"least 2, e.g. --looks {','.join(map(str, sorted(set(max(2, x) for x in looks))))}.")
        if max_seeds is not None and max_seeds != looks[-1]:
            raise ConfigError(f"--max-seeds {max_seeds} disagrees with the last look ({looks[-1]}): the last look is "
                              "the budget; drop --max-seeds or make them equal.")
        if spending not in SPENDING:
            raise ConfigError(f"--spending {spending!r}: choose {' or '.join(SPENDING)} (Lan–DeMets O'Brien–Fleming "
                              "or Pocock type).")
        return Schedule(looks[-1], seed_step, Design("sequential", tuple(looks), spending))
    if looks:
        raise ConfigError(f"--looks is for --design sequential; a {design} design "
                          f"{'has one look, at --max-seeds' if design == 'fixed' else 'looks after every seed step'}.")
    budget = DEFAULT_MAX_SEEDS if max_seeds is None else int(max_seeds)
    if design == "fixed":
        if budget < 2:
            raise ConfigError(f"--max-seeds {budget}: a fixed design needs at least 2 seeds per group.")
        return Schedule(budget, seed_step, Design("fixed", (budget,)))
    return Schedule(budget, seed_step, ANYTIME)


def check_budget(schedule: Schedule, n_seeds: int, family_sizes: List[int], alpha: float, goal: str,
                 n_groups: int, margin_declared: bool) -> None:
    """The budget and goal against the sweep's families (their sizes from the grid), before anything trains."""
    if goal not in GOALS:
        raise ConfigError(f"--goal {goal!r}: choose baseline (every variant vs sweep.baseline), pairs (all pairs) "
                          "or best (the best variant, or those within the margin of it).")
    if goal == "best":
        if n_groups < 2:
            raise ConfigError("--goal best needs at least two variants to compare in each family; add variants "
                              "(e.g. variant=no_bn,bn_pre_act,bn_post_act).")
        if not margin_declared:
            raise ConfigError("--goal best needs an equivalence margin (\"within ±m of the best\"): declare "
                              "report.margin=M in the metric's points (accuracies default to 1).")
    if schedule.design.kind == "anytime":
        k = max(family_sizes, default=1)
        need = fewest_seeds(k, alpha)
        if schedule.max_seeds < max(need, n_seeds):
            raise ConfigError(f"--max-seeds {schedule.max_seeds} is below {max(need, n_seeds)}: the sweep's own "
                              f"{n_seeds} seed(s), and the {need} seeds at which a family of {k} comparisons can "
                              f"reach any verdict at α={alpha:g}; give --max-seeds {max(need, n_seeds) + 2} or more.")
    elif n_seeds > schedule.design.looks[0]:
        raise ConfigError(f"The sweep has {n_seeds} seeds but the plan's first look is at {schedule.design.looks[0]}; "
                          "give fewer seeds (they are extended to the first look) or a later first look.")


__all__ = ["DEFAULT_MAX_SEEDS", "DEFAULT_SEED_STEP", "GOALS", "Schedule", "check_budget", "make_schedule"]
