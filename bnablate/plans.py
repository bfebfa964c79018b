"""Pre-registered plans: `sweep --design …` writes its design — goal, α, margin, metric, baseline, seed budget,
looks, every run key it may train and the pilot's forecast — to OUT_DIR/plans/<grid>.json before the first run
trains, and every run it trains carries the plan's hash (`sweep.plan`). A report whose runs all belong to one plan
judges them with the plan's design; otherwise it says why not and uses the anytime-valid intervals."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from .atomic import atomic_write_text
from .stats.designs import ANYTIME, Design

PLANS_DIR = "plans"


class PlanError(ValueError):
    """A plan that cannot be written or read as asked (a usage error naming the fix)."""


@dataclass
class Plan:
    grid: str  # the sweep's name in decisions.csv: a hash of its first look's run keys
    kind: str  # anytime | fixed | sequential
    looks: List[int]  # planned seed counts (anytime: none)
    spending: str
    goal: str  # baseline | pairs | best (report.compare)
    metric: str
    alpha: float
    margin: Optional[float]  # metric points as declared (None: the metric's default)
    baseline: str
    max_seeds: int
    seed_step: int
    seeds: List[int]  # every seed the plan may train
    keys: List[str]  # every run key it may train (its cells × seeds)
    command: List[str]  # the sweep's overrides
    forecast: List[dict] = field(default_factory=list)  # the pilot's forecast, as shown before training
    created: str = ""

    @property
    def design(self) -> Design:
        return Design(self.kind, tuple(self.looks), self.spending) if self.kind != "anytime" else ANYTIME

    def content(self) -> dict:
        """What the plan declares (the hash covers it; the creation time, the command as typed — a rerun may add
        execution options such as threads=1 — and the forecast's text do not)."""
        body = asdict(self)
        for informative in ("created", "forecast", "command"):
            body.pop(informative)
        return body

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.content(), sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> str:
        if self.kind == "fixed":
            how = f"fixed design: one look at {self.looks[0]} seeds"
        elif self.kind == "sequential":
            how = f"group-sequential design ({self.spending} spending): looks at {', '.join(map(str, self.looks))} seeds"
        else:
            how = f"anytime-valid design: a look per seed step up to {self.max_seeds} seeds"
        return (f"plan {self.grid} ({self.hash}): {how}; goal {self.goal}, α={self.alpha:g}, "
                f"margin {'default' if self.margin is None else f'±{self.margin:g}'}; seeds "
                f"{self.seeds[0]}–{self.seeds[-1]}")


def plan_path(folder: Path, grid: str) -> Path:
    return Path(folder) / PLANS_DIR / f"{grid}.json"


def write_plan(folder: Path, plan: Plan) -> Path:
    """Write the plan unless the folder already holds it; a different plan for the same grid is refused: a design is
    declared once, before its runs are seen."""
    path = plan_path(folder, plan.grid)
    if path.exists():
        old = read_plan(path)
        if old.content() != plan.content():
            changed = sorted(k for k, v in plan.content().items() if old.content().get(k) != v)
            raise PlanError(f"{path} already declares another plan for this sweep (it differs in "
                            f"{', '.join(changed)}). A plan is declared before its runs are seen and not changed "
                            "afterwards: rerun with the options it declares, or write the new plan into another "
                            "out_dir (delete the file only if no run of it was looked at).")
        return path
    atomic_write_text(path, json.dumps({**asdict(plan), "hash": plan.hash}, indent=1, sort_keys=True) + "\n")
    return path


def read_plan(path: Path) -> Plan:
    try:
        body = json.loads(Path(path).read_text())
        body.pop("hash", None)
        return Plan(**body)
    except (OSError, ValueError, TypeError) as e:
        raise PlanError(f"{path} is not a plan bnablate can read ({type(e).__name__}: {e}); move it aside.") from e


def load_plans(folders: Iterable[Path]) -> List[Plan]:
    return [read_plan(p) for f in folders for p in sorted((Path(f) / PLANS_DIR).glob("*.json"))]


def plan_for_runs(plans: Sequence[Plan], run_keys: Iterable[str], chosen: Optional[str] = None
                  ) -> Tuple[Optional[Plan], str]:
    """(the plan whose design judges these runs, or None; a note saying which and why, or why none). chosen: a grid
    or hash given with `report --plan`: that plan, its runs alone."""
    keys = set(run_keys)
    if chosen is not None:
        match = [p for p in plans if chosen in (p.grid, p.hash)]
        if not match:
            raise PlanError(f"--plan {chosen}: no such plan in the folders (plans: "
                            f"{', '.join(p.grid for p in plans) or 'none'}).")
        return match[0], f"Plan: {match[0].describe()}; its runs alone are judged."
    if not plans:
        return None, ""
    for p in plans:
        outside = keys - set(p.keys)
        if not outside and p.kind != "anytime":
            return p, f"Plan: {p.describe()}; every run of this report belongs to it, so its design judges them."
    names = ", ".join(p.grid for p in plans)
    return None, (f"Plans in the folder ({names}) were not used: this report holds runs outside each of them (other "
                  "seeds or sweeps), so its intervals are the anytime-valid ones, valid however seeds were added; "
                  "`bnablate report DIR --plan GRID` judges one plan's runs alone.")


__all__ = ["PLANS_DIR", "Plan", "PlanError", "load_plans", "plan_for_runs", "plan_path", "read_plan", "write_plan"]
