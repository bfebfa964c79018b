"""The Python API — `bnablate.sweep`, `run`, `report`, `load_results`, `plan` — that the CLI and notebooks both call."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import pandas as pd

from .billing import Bill, make_bill
from .config import compose_config, to_plain
from .reports import FORMATS, make_report
from .reports.sources import table_files
from .reports.summary import Report
from .results import build_tables, load_records, rebuild_tables
from .results.records import RECORDS_DIR, check_writable
from .keys import override_key
from .schedule import DEFAULT_SEED_STEP, GOALS, Schedule, make_schedule
from .sequential import LookOptions, check_until_decided, run_until_decided
from .sweep_plan import SweepPlan, check_sections, plan_sweep
from .sweeps import Reporter, execute_run, quarantine_bad_records, run_sweep
from .train import ConfigError, preflight
from .plugins import check_plugins
from .tuning import (DEFAULT_TUNE_METRIC, DEFAULT_TUNE_SEEDS, TuneSpec, check_tune, merge, parse_tune,
                     plan_tuning, run_parts, run_tuning)
from .waiting import DEFAULT_WAIT_TIMEOUT, POLL_SECONDS, Wait

PathLike = Union[str, Path]


def _with_out_dir(overrides: Iterable[str], out_dir: Optional[PathLike]) -> List[str]:
    """The overrides, with out_dir=… last when given (so it wins over one in the list)."""
    overrides = list(overrides)
    return overrides + [f"out_dir={Path(out_dir)}"] if out_dir is not None else overrides


def plan(overrides: Iterable[str] = (), out_dir: Optional[PathLike] = None) -> SweepPlan:
    """The sweep `overrides` describe, every job composed and checked (data included), nothing trained: its jobs,
    configs, run keys, output folders and launcher. Raises ConfigError/DataError (or Hydra's errors for a malformed
    override) naming the fix."""
    check_plugins()  # a plugin that did not load: PluginError naming it, before anything else
    sweep_plan = plan_sweep(_with_out_dir(overrides, out_dir))
    if not sweep_plan.jobs:
        raise ConfigError("The sweep is empty: no runs to do. Give values, e.g. variant=no_bn,bn_pre_act "
                          "seed=range(3).")
    return sweep_plan


def with_goal(overrides: Iterable[str], goal: Optional[str]) -> List[str]:
    """The overrides with `--goal` as report.compare (what the report and the looks compare); a different
    report.compare on the same command line is refused."""
    overrides = list(overrides)
    if goal is None:
        return overrides
    if goal not in GOALS:
        raise ConfigError(f"--goal {goal!r}: choose baseline (every variant vs sweep.baseline), pairs (all pairs) or "
                          "best (the best variant, or those within the margin of it).")
    given = [o.split("=", 1)[1] for o in overrides if override_key(o) == "report.compare" and "=" in o]
    if given and given[-1] != goal:
        raise ConfigError(f"--goal {goal} and report.compare={given[-1]} disagree; give one of them.")
    return overrides + [f"report.compare={goal}"]


def sweep(overrides: Iterable[str] = (), out_dir: Optional[PathLike] = None,
          reporter: Optional[Reporter] = None, until_decided: bool = False, max_seeds: Optional[int] = None,
          seed_step: int = DEFAULT_SEED_STEP, tune: Sequence[str] = (), tune_seeds: int = DEFAULT_TUNE_SEEDS,
          tune_mode: str = "per-variant", tune_metric: str = DEFAULT_TUNE_METRIC, tune_trials: Optional[int] = None,
          tune_sampler: Optional[str] = None, tune_pruner: str = "none", design: Optional[str] = None,
          looks: Sequence[int] = (), spending: str = "obf", goal: Optional[str] = None,
          wait_timeout: float = DEFAULT_WAIT_TIMEOUT, wait_poll: float = POLL_SECONDS) -> pd.DataFrame:
    """Train a grid of runs, as `bnablate sweep OVERRIDES` does, and return its runs.csv rows (one per planned run:
    finished ones from earlier sweeps included, failed runs as rows with status 'failed').

    until_decided: as `--until-decided`: after the grid, add `seed_step` seeds at a time to the groups of every
    comparison still undecided (report.* and sweep.baseline say what is compared and how), up to `max_seeds` seeds
    (default 12), logging each look to OUT_DIR/decisions.csv (docs/statistics.md). goal: as `--goal`
    (report.compare): "baseline", "pairs" or "best" — the race to the best variant, whose losers stop getting seeds.

    design: as `--design` ("anytime", "fixed", "sequential" with `looks` and `spending`): declare the plan in
    OUT_DIR/plans/<grid>.json before training (its seeds, budget, looks, goal, α and margin, and the forecast from a
    pilot in the folder) and look only where it says; implies until_decided. The runs.csv rows carry attrs["plan"],
    the plan's grid name, for `report(..., plan=...)`.

    tune: as `--tune`, e.g. ["optim.lr=0.003,0.03,0.3"]: first train every candidate on `tune_seeds` tuning seeds
    (1000, 1001, …) into OUT_DIR/tuning, select per variant (tune_mode "per-variant") or one value for all
    ("shared") on the validation metric `tune_metric`, then train each variant at its selected values on the sweep's
    seeds (docs/sweeps.md, 'Tuning before comparing'). A range such as "optim.lr=tag(log,interval(1e-4,1e-1))", a
    `tune_sampler` ("random", "tpe"; "grid" is a list's default) or a `tune_pruner` ("median", "asha") tunes by a
    seeded, resumable Optuna study of `tune_trials` trials per variant (docs/sweeps.md, 'Ranges, samplers and
    pruning').

    wait_timeout: as `--wait-timeout`: seconds an until-decided look or the tuning selection waits for runs another
    process sharing the folder is training (live claims), looking every `wait_poll` seconds, before RunsPending (a
    ConfigError naming the fix); 0 does not wait. Runs whose claim went stale (their process died) are trained here.

    overrides: Hydra overrides, e.g. ["variant=no_bn,bn_pre_act", "seed=range(3)"] or ["sweep=repro_bias"]; the
    default is the `placement` preset on the embedded digits data. out_dir: where records and tables go (default:
    runs/<sweep.name>). Finished runs are skipped (their run key is already recorded there); each run's record is
    written as it ends, so an interrupted sweep resumes where it stopped. Every job is checked before anything
    trains (ConfigError/DataError); OutputError when the folder cannot take results (before training) or a record
    could not be written (after every other run)."""
    wait = Wait(wait_timeout, wait_poll)
    sweep_plan, schedule, spec, settings = _checked(overrides, out_dir, until_decided, max_seeds, seed_step, tune,
                                                    tune_seeds, tune_mode, tune_metric, design, looks, spending, goal,
                                                    tune_trials, tune_sampler, tune_pruner)
    until_decided = settings is not None
    for folder in sweep_plan.out_dirs:
        check_writable(folder)
    reporter = reporter or Reporter()
    body = None
    if design is not None:  # the first look's seeds; the plan is declared before the runs it judges train
        from .preregister import declare, first_look, labelled

        sweep_plan = first_look(sweep_plan, schedule)
        if spec is None:
            body = declare(sweep_plan, schedule, settings)
            sweep_plan = labelled(sweep_plan, body)
            reporter.plan_declared(body)
    tuning = plan_tuning(sweep_plan, spec) if spec is not None else None  # every tuning job checked, none trained
    quarantine_bad_records(sweep_plan)  # bad files moved aside, bytes intact: their runs train again
    reporter.sweep_planned(sweep_plan)
    keys = list(sweep_plan.keys)
    try:
        if spec is not None:
            parts, _ = run_tuning(sweep_plan, spec, reporter, tuning, wait)
            if design is not None:  # declared once each variant's values are chosen: its cells are the tuned ones
                body = declare(merge(parts, sweep_plan.data), schedule, settings)
                parts = [labelled(p, body) for p in parts]
                reporter.plan_declared(body)
            tuned = merge(parts, sweep_plan.data)
            keys = list(tuned.keys)
            if until_decided:
                keys = run_until_decided(tuned, reporter, schedule, train=lambda: run_parts(parts, reporter),
                                         grid=body.grid if body else None, wait=wait)[1]
            else:
                run_parts(parts, reporter)
        elif until_decided:
            keys = run_until_decided(sweep_plan, reporter, schedule, grid=body.grid if body else None,
                                     wait=wait)[1]
        else:
            run_sweep(sweep_plan, reporter)
    except KeyboardInterrupt:  # a record may have been written just before the interrupt, its tables not yet
        _rebuild_quietly(sweep_plan.out_dirs)
        raise
    frames = [rebuild_tables(folder)[1] for folder in sweep_plan.out_dirs]
    runs = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(not f.empty for f in frames) \
        else pd.DataFrame(columns=["run_key", "status"])
    out = runs[runs["run_key"].isin(keys)].reset_index(drop=True)
    out.attrs["plan"] = body.grid if body else None
    return out


def _checked(overrides: Iterable[str], out_dir: Optional[PathLike], until_decided: bool, max_seeds: Optional[int],
             seed_step: int, tune: Sequence[str], tune_seeds: int, tune_mode: str, tune_metric: str,
             design: Optional[str], looks: Sequence[int], spending: str, goal: Optional[str],
             tune_trials: Optional[int] = None, tune_sampler: Optional[str] = None, tune_pruner: str = "none"
             ) -> Tuple[SweepPlan, Schedule, Optional[TuneSpec], Optional[LookOptions]]:
    """sweep()'s arguments checked, nothing written: the plan, the schedule, the tuning spec (None without tune) and
    the looks' options (None unless until_decided or a design)."""
    check_plugins()  # a plugin that did not load: PluginError naming it, before anything else
    schedule = make_schedule(design or "anytime", max_seeds, seed_step, looks, spending)
    sweep_plan = plan(with_goal(overrides, goal), out_dir)
    spec = parse_tune(tune, tune_seeds, tune_mode, tune_metric, tune_sampler, tune_pruner, tune_trials) if tune \
        else None
    if spec is not None:
        check_tune(sweep_plan, spec)  # before anything is written
    settings = check_until_decided(sweep_plan, schedule) if until_decided or design is not None else None
    return sweep_plan, schedule, spec, settings


def bill(overrides: Iterable[str] = (), out_dir: Optional[PathLike] = None, until_decided: bool = False,
         max_seeds: Optional[int] = None, seed_step: int = DEFAULT_SEED_STEP, tune: Sequence[str] = (),
         tune_seeds: int = DEFAULT_TUNE_SEEDS, tune_mode: str = "per-variant", tune_metric: str = DEFAULT_TUNE_METRIC,
         design: Optional[str] = None, looks: Sequence[int] = (), spending: str = "obf", goal: Optional[str] = None,
         calibrate: bool = True, tune_trials: Optional[int] = None, tune_sampler: Optional[str] = None,
         tune_pruner: str = "none") -> Bill:
    """What `sweep(...)` with the same arguments would cost, as `bnablate sweep --dry-run` prints it; nothing trains
    and nothing is written. Returns a Bill: `.phases` (one row per phase — tuning, the grid, the later looks at most
    — with its planned, finished and to_train runs and estimated wall seconds), `.costs` (seconds per run of each
    distinct architecture and where the figure came from: the median of the folder's finished runs of it, or a
    calibration of a few training steps and one evaluation batch here), `.runs`, `.seconds` and `.lines()`; with
    until_decided or a design, `.decidable` (per family: comparisons, the fewest seeds per group at which any verdict
    is possible, the budget) and `.forecast` (per comparison, from the folder's finished runs as a pilot: the spread
    of paired differences, the power at the budget to call a true difference of the margin, the seeds power 0.8
    takes). calibrate=False: no calibration (architectures without finished runs get no estimate). Raises as sweep() does
    for a bad argument."""
    sweep_plan, schedule, spec, settings = _checked(overrides, out_dir, until_decided, max_seeds, seed_step, tune,
                                                    tune_seeds, tune_mode, tune_metric, design, looks, spending, goal,
                                                    tune_trials, tune_sampler, tune_pruner)
    tuning = plan_tuning(sweep_plan, spec)[0] if spec is not None else None
    the_bill = make_bill(sweep_plan, schedule if settings is not None else None, spec, tuning, calibrate)
    if settings is not None:
        from .preregister import anytime_forecast, draft, first_look
        from .sequential import fewest_table

        the_bill.decidable = pd.DataFrame(fewest_table(sweep_plan, schedule, settings))
        if spec is None:
            rows = (anytime_forecast(sweep_plan, schedule, settings) if schedule.design.kind == "anytime" else
                    draft(first_look(sweep_plan, schedule), schedule, settings).forecast)
            the_bill.forecast = pd.DataFrame(rows)
    return the_bill


def run(overrides: Iterable[str] = (), out_dir: Optional[PathLike] = None, force: bool = False,
        reporter: Optional[Reporter] = None) -> Dict[str, Any]:
    """Train one configuration, as `bnablate run OVERRIDES` does, and return its record (a dict: run_key, status,
    config, per-epoch metrics, provenance; `skipped: True` when it was already recorded and force is False). A bad
    config or missing data raises ConfigError/DataError before anything is written; a run that fails while training
    returns a record with status 'failed' and its error."""
    check_plugins()  # a plugin that did not load: PluginError naming it, before anything else
    cfg = compose_config(_with_out_dir(overrides, out_dir))
    to_plain(cfg)  # interpolation errors surface here, before any work
    check_sections(cfg)  # pack.* and report.*, as a sweep checks them
    data = preflight(cfg)  # missing files or a too-large batch fail here, before anything is written
    check_writable(cfg.out_dir)
    try:
        return execute_run(cfg, reporter=reporter, skip_finished=not force, raise_setup_errors=True, data=data)
    except KeyboardInterrupt:
        _rebuild_quietly([Path(cfg.out_dir)])
        raise


def _rebuild_quietly(folders: Iterable[Path]) -> None:
    """After Ctrl-C: the tables rebuilt from every record kept (one written just before the interrupt included), so
    they match the records; a second interrupt here leaves them for the next rebuild."""
    for folder in folders:
        try:
            rebuild_tables(folder)
        except (KeyboardInterrupt, OSError):
            return


def _check_runs_dir(folder: Path, tables_too: bool = False) -> None:
    if not (folder / RECORDS_DIR).is_dir():
        also = (" or one holding runs.parquet + results.parquet (or runs.csv + results.csv) copied from such a folder"
                if tables_too else "")
        raise ValueError(f"{folder} holds no run records ({folder}/{RECORDS_DIR}/*.json); give a folder written by "
                         f"`bnablate sweep` or `run`{also}.")


def report(dirs: Union[PathLike, Sequence[PathLike]], out: Optional[PathLike] = None, metric: Optional[str] = None,
           baseline: Optional[str] = None, formats: Sequence[str] = FORMATS, **options: Any) -> Report:
    """The statistics of the runs in `dirs` (one folder or several, merged), as `bnablate report` computes them, with
    its tables and figures written under `out` (default: FIRST_DIR/report; formats=() writes nothing). Returns the
    Report: `.summary` (one row per group: mean ± CI, rank, and in baseline mode Δ vs the baseline with its interval,
    adjusted p, TOST p and verdict), `.comparisons` (one row per comparison: verdict better / worse / equivalent /
    undecided, with the numbers behind it; as comparisons.csv: differences in display points, `unit` says which),
    `.by`, `.notes`, `.views` (pivot and per-epoch tables) and `.files`.
    options: target, by, alpha, margin (metric points), compare ('baseline' | 'pairs' | 'best'), plan (a plan's grid
    or hash: its runs alone, under its pre-registered design), pivot, trained_above,
    per_epoch — as the CLI's options; metric, alpha, margin, compare and baseline default to the runs' report.* and
    sweep.baseline. Raises ValueError naming the fix for a bad folder or option."""
    check_plugins()  # a plugin that did not load: PluginError naming it, before anything else
    folders = [Path(dirs)] if isinstance(dirs, (str, Path)) else [Path(d) for d in dirs]
    for folder in folders:
        if table_files(folder) is None:  # a folder of tables only (runs + results, Parquet or CSV) reports too
            _check_runs_dir(folder, tables_too=True)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"Unknown --format {', '.join(bad)}. Choose from: {', '.join(FORMATS)}.")
    result, written = make_report(folders, out=Path(out) if out is not None else None, metric=metric,
                                  baseline=baseline, formats=list(formats), **options)
    result.files = written
    return result


def load_results(out_dir: PathLike, per_epoch: bool = False) -> pd.DataFrame:
    """The runs of a folder as a DataFrame rebuilt from its records (the source of truth): runs.csv's rows (one per
    run), or results.csv's (one per run × epoch) with per_epoch=True."""
    folder = Path(out_dir)
    _check_runs_dir(folder)
    results, runs = build_tables(load_records(folder))
    return results if per_epoch else runs


__all__ = ["bill", "load_results", "plan", "report", "run", "sweep"]
