"""`sweep --design …`: declare the plan before anything trains — its seeds (the command's, extended to the first
look), every run key it may train, the pilot's forecast — write it to OUT_DIR/plans/<grid>.json, and re-plan the
sweep's first look with the plan's hash on every job (`sweep.plan`)."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import List, Tuple

import pandas as pd

from .keys import override_key
from .plans import Plan, PlanError, plan_path, write_plan
from .reports.metrics import metric_info
from .reports.sources import load_sources
from .reports.summary import build_report
from .results import finished
from .schedule import Schedule
from .sequential import LookOptions, grid_cells, grid_id
from .stats.forecast import forecast
from .sweep_plan import SweepPlan, plan_sweep
from .train import ConfigError


def _without_seeds(overrides: List[str]) -> List[str]:
    return [o for o in overrides if override_key(o) != "seed"]


def planned_seeds(plan: SweepPlan, schedule: Schedule) -> Tuple[List[int], List[int]]:
    """(every seed the plan may train, the first look's): the command's seeds, then the next integers, up to the
    budget."""
    own = sorted({int(c.seed) for c in plan.configs})
    first = own + list(range(own[-1] + 1, own[-1] + 1 + schedule.first_count(len(own)) - len(own)))
    seeds = first + list(range(first[-1] + 1, first[-1] + 1 + schedule.max_seeds - len(first)))
    return seeds, first


def pilot_forecast(plan: SweepPlan, keys: set, settings: LookOptions, schedule: Schedule,
                   own_seeds: bool = False) -> List[dict]:
    """From the finished runs of this grid's cells at seeds outside the plan (a pilot), each comparison's spread of
    paired differences and the power of the plan's budget to call a true difference of the margin (the declared
    effect): empty without such runs. own_seeds: the grid's own seeds count as pilot too (anytime_forecast)."""
    src = load_sources(plan.out_dirs)
    if src.runs.empty:
        return []
    cells = grid_cells(plan)
    pilot_seeds = sorted({int(s) for s in src.runs["seed"]}
                         - (set() if own_seeds else {s for by in cells.values() for s in by}))
    if not pilot_seeds:
        return []
    pilot_keys = set()
    for cell in cells:
        extra = plan_sweep(list(cell) + [f"seed={','.join(map(str, pilot_seeds))}"], data=plan.data)
        pilot_keys |= {k for k in extra.keys if k not in keys}
    runs = src.runs[src.runs["run_key"].isin(pilot_keys)]
    results = src.results[src.results["run_key"].isin(pilot_keys)]
    if runs.empty:
        return []
    rep = build_report(results, runs, src.identifying, metric=settings.metric, baseline=settings.baseline,
                       alpha=settings.alpha, margin=settings.margin, compare=settings.compare)
    out = []
    margin = rep.settings.margin
    for _, c in rep.comparisons.iterrows():
        sd = float(c["sd_diff"])
        if not (math.isfinite(sd) and margin):
            continue
        f = forecast(schedule.design, schedule.max_seeds, int(c["family_size"]), sd, margin, settings.alpha)
        out.append({"family": c["family"], "a": str(c["a"]), "b": str(c["b"]), "pilot_seeds": int(c["n_pairs"]),
                    "sd_diff": sd, "effect": margin, "power": round(f.power, 3),
                    "seeds_for_power_0.8": f.seeds_for_power})
    return out


def anytime_forecast(plan: SweepPlan, schedule: Schedule, settings: LookOptions) -> List[dict]:
    """pilot_forecast for a plain `--until-decided` sweep (no plan): every finished run of the grid's cells in the
    folder is pilot, the grid's own seeds included. They count in the test without inflating α, which an internal
    pilot of a planned design would: the anytime-valid intervals hold at every number of seeds, however it was
    reached."""
    return pilot_forecast(plan, set(), settings, schedule, own_seeds=True)


def first_look(plan: SweepPlan, schedule: Schedule) -> SweepPlan:
    """The sweep with its seeds extended to the plan's first look (the command's seeds when it has no planned looks)."""
    _, first = planned_seeds(plan, schedule)
    return plan_sweep(_without_seeds(plan.overrides) + [f"seed={','.join(map(str, first))}"], data=plan.data)


def draft(plan: SweepPlan, schedule: Schedule, settings: LookOptions) -> Plan:
    """The plan the sweep declares for the cells of `plan` (its first look: the grid's cells, or with --tune the
    cells at each variant's selected values), written nowhere (`--dry-run` prints it). A fixed or sequential plan
    whose seeds already have finished runs that it did not train is refused: such a design is declared before its
    seeds are seen (the runs can serve as its pilot if its seeds start above them)."""
    seeds, first = planned_seeds(plan, schedule)
    cells = grid_cells(plan)
    every = [plan_sweep(list(cell) + [f"seed={','.join(map(str, seeds))}"], data=plan.data) for cell in cells]
    grid = grid_id(cells)
    out_dirs = plan.out_dirs
    existing = [plan_path(d, grid).exists() for d in out_dirs]
    seen = sorted({int(c.seed) for part in every for c, k in zip(part.configs, part.keys)
                   if finished(Path(c.out_dir), k) is not None})
    if schedule.design.kind != "anytime" and seen and not all(existing):
        raise ConfigError(
            f"Seeds {', '.join(map(str, seen))} of this {schedule.design.kind} design already have finished runs in "
            f"{', '.join(map(str, out_dirs))}: a planned design is declared before its seeds are seen. Start its "
            f"seeds above them (e.g. seed=range({max(seen) + 1},{max(seen) + 1 + len(first)})): the runs there then "
            "serve as the pilot that sizes the plan.")
    keys = {k for part in every for k in part.keys}
    return Plan(grid=grid, kind=schedule.design.kind, looks=list(schedule.design.looks),
                spending=schedule.design.spending, goal=settings.compare, metric=settings.metric,
                alpha=settings.alpha, margin=settings.margin, baseline=settings.baseline,
                max_seeds=schedule.max_seeds, seed_step=schedule.seed_step, seeds=seeds, keys=sorted(keys),
                command=list(plan.overrides), forecast=pilot_forecast(plan, keys, settings, schedule),
                created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def declare(plan: SweepPlan, schedule: Schedule, settings: LookOptions) -> Plan:
    """Write the plan of `plan`'s cells (draft) into every output folder, before any of its runs trains."""
    body = draft(plan, schedule, settings)
    try:
        for folder in plan.out_dirs:
            write_plan(folder, body)
    except PlanError as e:
        raise ConfigError(str(e)) from e
    return body


def labelled(plan: SweepPlan, body: Plan) -> SweepPlan:
    """The same jobs with the plan's hash on each (`sweep.plan`: a label, so the run keys are the plan's)."""
    return plan_sweep(list(plan.overrides) + [f"sweep.plan={body.hash}"], data=plan.data)


def forecast_lines(body: Plan) -> List[str]:
    """The pilot's forecast as `--dry-run` and the sweep print it before training."""
    if not body.forecast:
        return [f"no pilot in the folder (finished runs of these variants at other seeds): no forecast; the plan's "
                f"budget is {body.max_seeds} seeds per group"]
    return forecast_text(body.forecast, body.max_seeds)


def anytime_forecast_lines(rows: List[dict], budget: int, settings: LookOptions) -> List[str]:
    """anytime_forecast as a plain `--until-decided --dry-run` prints it."""
    if not metric_info(settings.metric).margin_points(settings.margin):
        return [f"no margin for {settings.metric}: no forecast of the seeds each comparison needs (the power is to "
                "call a true difference of the margin); declare one with report.margin=M for a forecast"]
    if not rows:
        return ["no finished runs of these cells in the folder yet: no forecast of the seeds each comparison needs "
                "(after the first look, --dry-run again gives one; the look's runs count in the test)"]
    return forecast_text(rows, budget)


def forecast_text(forecast: List[dict], budget: int) -> List[str]:
    rows = pd.DataFrame(forecast)
    lines = [f"forecast from the pilot (power to call a true difference of ±{rows['effect'].iloc[0]:g} in the metric's "
             f"units with {budget} seeds, and the seeds power 0.8 takes):"]
    for _, r in rows.iterrows():
        need = "> 400" if not math.isfinite(r["seeds_for_power_0.8"]) else f"{r['seeds_for_power_0.8']:.0f}"
        lines.append(f"  {r['family']}: {r['a']} vs {r['b']}: sd {r['sd_diff']:.4g} over {r['pilot_seeds']} pilot "
                     f"seeds → power {r['power']:.2f}; power 0.8 needs {need} seeds")
    return lines


__all__ = ["anytime_forecast", "anytime_forecast_lines", "declare", "draft", "first_look", "forecast_lines",
           "forecast_text", "labelled", "pilot_forecast", "planned_seeds"]
