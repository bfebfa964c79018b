"""A report under a plan (plans.py): which plan judges the runs, and — beside each comparison's planned interval —
the anytime-valid one and the plan's power, so a reader sees what the pre-registration bought."""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import pandas as pd

from ..plans import Plan, load_plans, plan_for_runs
from ..stats.forecast import power_at
from .summary import Report, build_report

DECLARED = ("metric", "alpha", "margin", "compare", "baseline")


def choose_plan(dirs: Sequence, runs: pd.DataFrame, options: Dict[str, object], given: Dict[str, object],
                chosen: Optional[str]) -> Tuple[Optional[Plan], List[str]]:
    """(the plan whose design judges this report, or None; notes). A plan applies when every run of the report
    belongs to it (or `chosen` names it: then its runs alone are reported) and the report's decision options are
    the ones it declared; otherwise the notes say why the anytime-valid intervals are used."""
    plans = load_plans(dirs)
    found, note = plan_for_runs(plans, runs["run_key"] if not runs.empty else (), chosen)
    if found is None:
        return None, [note] if note else []
    declared = {"metric": found.metric, "alpha": found.alpha, "margin": found.margin, "compare": found.goal,
                "baseline": found.baseline}
    differs = [k for k in DECLARED if given.get(k) is not None and given[k] != declared[k]]
    if differs:
        return None, [f"Plan {found.grid} was not used: this report's {', '.join(differs)} differ from what it "
                      f"declared ({', '.join(f'{k}={declared[k]}' for k in differs)}), so its intervals are the "
                      "anytime-valid ones."]
    options.update({k: v for k, v in declared.items() if v is not None})
    return found, [note]


def beside_anytime(report: Report, results: pd.DataFrame, runs: pd.DataFrame, identifying, plan: Plan,
                   **kw) -> None:
    """Add to each planned comparison its anytime-valid interval and verdict (what an unplanned sweep would
    report) and the plan's power at the margin: the pilot's forecast when the plan had one, else the power of the
    plan's budget at the observed spread (labelled)."""
    c = report.comparisons
    if c.empty:
        return
    anytime = build_report(results, runs, identifying, by=report.by, **kw).comparisons.set_index(["family", "a", "b"])
    idx = list(zip(c["family"], c["a"], c["b"]))
    for col in ("ci_low", "ci_high", "verdict"):
        c[f"{col}_anytime"] = [anytime[col].get(i, math.nan) for i in idx]
    forecast = {(f["family"], f["a"], f["b"]): f["power"] for f in plan.forecast}
    margin = report.settings.margin if report.settings else None
    power, source = [], []
    for (fam, a, b), k, sd in zip(idx, c["family_size"], c["sd_diff"]):
        if (fam, str(a), str(b)) in forecast:
            power.append(forecast[(fam, str(a), str(b))])
            source.append("pilot")
        elif margin and math.isfinite(sd) and sd > 0:
            power.append(round(power_at(plan.design, plan.max_seeds, int(k), margin / sd, report.alpha), 3))
            source.append("observed spread")
        else:
            power.append(math.nan)
            source.append("")
    c["planned_power"], c["planned_power_from"] = power, source


__all__ = ["beside_anytime", "choose_plan"]
