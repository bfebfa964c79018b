"""The bill of a sweep before it trains (`sweep --dry-run`, `bnablate.bill`): the runs each phase may train — the
tuning, the grid (the first look), and the most that `--until-decided`'s looks can add up to the budget — less those
already finished in the folder, and the wall time they would take (bnablate/estimate.py)."""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pandas as pd
from omegaconf import DictConfig

from .estimate import CostKey, cost_key, estimate_costs
from .pack.plan import pack_size, why_alone
from .preregister import first_look, planned_seeds
from .results import finished
from .schedule import Schedule
from .sequential import LookOptions, family_sizes, grid_cells
from .sweep_plan import SweepPlan, plan_sweep
from .tuning import TuneSpec, plan_tuning
from .tuning_files import tuning_dir

TUNING, GRID, FIRST, LATER = "tuning", "the grid", "the grid (first look)", "later looks, at most"


@dataclass
class Job:
    """One run the sweep may train: its phase, config, the number of runs in the pack it trains in (1: alone), and
    whether it is finished already (None: not known before tuning chooses the values it runs at)."""
    phase: str
    cfg: DictConfig
    pack: int
    finished: Optional[bool]

    @cached_property
    def key(self) -> CostKey:
        return cost_key(self.cfg, self.pack)


@dataclass
class Bill:
    """phases: one row per phase — planned runs, finished (NaN where not known before tuning selects), to_train, and
    seconds (estimated wall seconds of the runs to train; NaN where some architecture has no estimate). costs: one
    row per distinct architecture × epochs × pack size among the runs to train — runs, seconds_per_run, source (the
    folder's finished runs, or a calibration on this machine). The estimate is of runs trained one after another in
    this process; a parallel launcher divides it by the jobs it runs at once."""
    phases: pd.DataFrame
    costs: pd.DataFrame
    notes: List[str] = field(default_factory=list)
    # With until_decided or a design (bnablate.bill fills them; the dry-run prints the same): per family, its
    # comparisons, the fewest seeds per group at which any verdict is possible and the budget; per comparison, the
    # pilot's forecast — sd of the paired differences over the pilot seeds, power at the budget to call a true
    # difference of `effect` (the margin), and the seeds power 0.8 takes (inf beyond 400). Empty where there is no
    # pilot, and with tune (the cells are known once tuning selects). sd_diff and effect in the metric's units (a
    # fraction for accuracies: 0.01 = 1 point).
    decidable: pd.DataFrame = field(default_factory=pd.DataFrame)
    forecast: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def runs(self) -> int:
        """Runs to train, at most (later looks counted as if every comparison stayed undecided to the budget)."""
        return int(self.phases["to_train"].sum())

    @property
    def seconds(self) -> float:
        """Estimated wall seconds of those runs; NaN where some run has no estimate."""
        return float(self.phases["seconds"].sum(min_count=1)) if not self.phases["seconds"].isna().any() else math.nan

    def lines(self) -> List[str]:
        """The bill as `bnablate sweep --dry-run` prints it: a line per phase and the total, then each estimate's
        source."""
        width = max(len(p) for p in [*self.phases["phase"], "total"])
        lines = ["the bill (runs to train, and their estimated wall time here):"]
        for _, r in self.phases.iterrows():
            done = ("finished ones known once tuning selects" if pd.isna(r["finished"]) else
                    f"{int(r['finished'])} of {int(r['planned'])} already finished" if r["finished"] else "")
            lines.append(f"  {r['phase']:<{width}}  {int(r['to_train']):>5} runs  {_clock(r['seconds']):>9}"
                         + (f"  ({done})" if done else ""))
        lines.append(f"  {'total':<{width}}  {self.runs:>5} runs  {_clock(self.seconds):>9}")
        lines += [f"  {r['architecture']}: {_seconds(r['seconds_per_run'])} per run ({r['runs']} runs) — "
                  f"{r['source']}" for _, r in self.costs.iterrows()]
        return lines + self.notes


def _clock(seconds: float) -> str:
    return "unknown" if pd.isna(seconds) else str(_dt.timedelta(seconds=round(float(seconds))))


def _seconds(seconds: float) -> str:
    return "?" if pd.isna(seconds) else f"{seconds:.3g} s"


def make_bill(plan: SweepPlan, schedule: Optional[Schedule] = None, spec: Optional[TuneSpec] = None,
              tuning: Optional[Sequence[SweepPlan]] = None, calibrate: bool = True) -> Bill:
    """The bill of `plan` (checked by the caller, as the sweep checks it): with `spec` its tuning runs (`tuning`:
    plan_tuning's parts when the caller has them), the grid — extended to a design's first look — and with
    `schedule` (--until-decided, --design) every run its later looks could add if every comparison stayed undecided
    to the budget; less the finished runs, each run to train priced by estimate_costs. Writes nothing."""
    jobs: List[Job] = []
    if spec is not None:
        for part in tuning if tuning is not None else plan_tuning(plan, spec)[0]:
            if spec.study:  # its trials' values are drawn as it goes: trials × seeds per cell at most, pruning aside
                jobs += [Job(TUNING, part.configs[-1], 1, None)] * spec.budget
            else:
                jobs += _planned(part, TUNING)
    first = plan
    if schedule is not None and planned_seeds(plan, schedule)[1] != sorted({int(c.seed) for c in plan.configs}):
        first = first_look(plan, schedule)  # a design's first look extends the command's seeds
    known = spec is None  # with --tune the evaluation runs' values (so their run keys) come from the tuning
    grid = GRID if schedule is None else FIRST
    jobs += _planned(first, grid) if known else _by_cell(first, grid, None)
    if schedule is not None:
        jobs += _by_cell(first, LATER, schedule, known)
    todo = [j for j in jobs if not j.finished]
    folders = [*plan.out_dirs, *(tuning_dir(d) for d in plan.out_dirs)]
    costs = estimate_costs({j.key: (j.cfg, j.pack) for j in todo}, folders, plan.data, calibrate)
    rows = []
    for phase in dict.fromkeys(j.phase for j in jobs):
        mine = [j for j in jobs if j.phase == phase]
        left = [j for j in mine if not j.finished]
        prices = [costs[j.key].seconds for j in left]
        rows.append({"phase": phase, "planned": len(mine),
                     "finished": math.nan if any(j.finished is None for j in mine) else
                     sum(bool(j.finished) for j in mine), "to_train": len(left),
                     "seconds": math.nan if any(p is None for p in prices) else float(sum(prices))})
    counts = Counter(j.key for j in todo)
    table = pd.DataFrame([{"architecture": c.label, "runs": counts[k], "seconds_per_run": c.seconds,
                           "source": c.source} for k, c in costs.items()],
                         columns=["architecture", "runs", "seconds_per_run", "source"])
    notes = [] if plan.launcher == "basic" else [
        f"  the {plan.launcher} launcher runs jobs in parallel: the wall time is the total above divided by the "
        "jobs it runs at once"]
    return Bill(pd.DataFrame(rows, columns=["phase", "planned", "finished", "to_train", "seconds"]), table, notes)


def _planned(part: SweepPlan, phase: str) -> List[Job]:
    """Each job of a plan, packed as the plan packs it, finished or not."""
    size = {i: len(g.indices) for g in part.packs.packs for i in g.indices}
    done = set(part.packs.finished)
    return [Job(phase, cfg, size.get(i, 1), i in done) for i, cfg in enumerate(part.configs)]


def _by_cell(first: SweepPlan, phase: str, schedule: Optional[Schedule], known: bool = False) -> List[Job]:
    """The runs of each cell of the grid: without a schedule its first look's seeds (nothing known finished), with
    one the seeds its looks could add — the steps of Schedule.next_count from the first look to the budget, as if
    every comparison stayed undecided — each step's unfinished runs packed as the look would pack them."""
    if schedule is None:
        steps = [sorted({int(c.seed) for c in first.configs})]
    else:
        settings = LookOptions.of(first, schedule.design)
        k = max(family_sizes(first, settings)[1], default=1)
        seeds, start = planned_seeds(first, schedule)
        steps, n = [], len(start)
        while (nxt := schedule.next_count(n, k, settings.alpha)) is not None:
            steps.append(seeds[n:nxt])
            n = nxt
    configs = dict(zip(first.keys, first.configs))
    jobs = []
    for cell, by_seed in grid_cells(first).items():
        cfg = configs[next(iter(by_seed.values()))]
        done: Dict[int, Optional[bool]] = {}
        wanted = [s for step in steps for s in step]
        if known and wanted:  # the run keys of these seeds, as the looks would plan them
            extra = plan_sweep(list(cell) + [f"seed={','.join(map(str, wanted))}"], data=first.data,
                               validate=lambda c: None)
            done = {int(c.seed): finished(Path(c.out_dir), k) is not None for c, k in zip(extra.configs, extra.keys)}
        cap = 1 if first.launcher != "basic" or why_alone(cfg) else pack_size(cfg, lambda: first.data.nbytes(cfg))[0]
        for step in steps:
            jobs += [Job(phase, cfg, 1, True) for s in step if done.get(s)]
            left = len([s for s in step if not done.get(s)])
            for at in range(0, left, cap):
                size = min(cap, left - at)
                jobs += [Job(phase, cfg, size, False if known else None)] * size
    return jobs


__all__ = ["Bill", "Job", "make_bill"]
