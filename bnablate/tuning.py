"""`sweep --tune`: each variant's hyperparameters chosen on the validation split, over tuning seeds disjoint from the
evaluation seeds, within a declared budget (a grid: every candidate × every tuning seed), then every variant trained
at its own selected values on the evaluation seeds and compared as any sweep (external tuning as in DeepOBS and
AlgoPerf). Tuning and evaluation runs are ordinary runs (run keys, resume, packing); the tuning runs live in
OUT_DIR/tuning/, the selection in OUT_DIR/tuning/selection.csv, which the report reads."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from .config import KEYS
from .defaults import (DEFAULT_RANGE_TRIALS, DEFAULT_TUNE_METRIC, DEFAULT_TUNE_SEEDS, TUNE_METRICS, TUNE_PRUNERS,
                       TUNE_SAMPLERS)
from .keys import Role
from .registry import did_you_mean
from .reports.comparisons import split_baseline
from .sweep_plan import DataCache, SweepPlan, plan_sweep
from .sweeps import Reporter, run_sweep
from .train import ConfigError
from .keys import override_key as _key
from .tune_space import Range, Space, parse_range
from .tuning_files import tuning_dir, write_selection
from .waiting import Wait, await_runs

TUNE_SEED_BASE = 1000  # tuning seeds are 1000, 1001, …: never an evaluation seed of an ordinary sweep
TUNE_MODES = ("per-variant", "shared")

Cell = Tuple[str, ...]  # a grid point of the sweep: its job's overrides without seed, out_dir and the tuned keys


@dataclass
class TuneSpec:
    """What is tuned and how: the search space (per key a list of values in the declared order, or a range), the
    tuning seeds, the mode and the validation metric; for a study (a range, a sampler other than the grid, or a
    pruner) the sampler, pruner and trial budget per variant."""
    space: Space
    seeds: List[int]
    mode: str = "per-variant"
    metric: str = DEFAULT_TUNE_METRIC
    sampler: str = "grid"
    pruner: str = "none"
    trials: int = 0  # per variant (per context in shared mode); 0: every grid point

    def __post_init__(self) -> None:
        if isinstance(self.space, dict):  # a grid as key → values (the Python API's and the tests' spelling)
            self.space = Space(tuple((k, list(v)) for k, v in self.space.items()))

    @property
    def keys(self) -> List[str]:
        return self.space.keys

    @property
    def grid(self) -> Dict[str, List[str]]:
        """key → values of a space of lists (the grid; today's --tune)."""
        return self.space.grid()

    @property
    def study(self) -> bool:
        """Tuned by an Optuna study (tune_study.py) rather than by training the whole grid as a sweep."""
        return self.space.has_range or self.sampler != "grid" or self.pruner != "none"

    @property
    def candidates(self) -> List[Tuple[str, ...]]:
        """Every combination, as override lists ('optim.lr=0.01', …), first key slowest (the declared order)."""
        return [tuple(f"{k}={v}" for k, v in zip(self.grid, values)) for values in itertools.product(*self.grid.values())]

    @property
    def budget(self) -> int:
        """Tuning runs per variant (per context in shared mode): candidates (trials) × tuning seeds."""
        return (self.trials if self.study else len(self.candidates)) * len(self.seeds)

    def describe(self) -> str:
        who = "per variant" if self.mode == "per-variant" else "one value shared by all variants"
        head = (f"tuned {who} on {self.metric} (validation split) over tuning seeds "
                f"{','.join(map(str, self.seeds))}: ")
        if self.study:
            return (head + f"{self.space.text()}; {self.sampler} sampler, pruner {self.pruner}; budget {self.trials} "
                    f"trials × {len(self.seeds)} seeds = at most {self.budget} runs")
        grid = "; ".join(f"{k} ∈ {{{', '.join(v)}}}" for k, v in self.grid.items())
        return (head + f"{grid}; budget {len(self.candidates)} candidates × {len(self.seeds)} seeds = "
                f"{self.budget} runs")


def parse_tune(items: Sequence[str], seeds: int = DEFAULT_TUNE_SEEDS, mode: str = "per-variant",
               metric: str = DEFAULT_TUNE_METRIC, sampler: Optional[str] = None, pruner: str = "none",
               trials: Optional[int] = None) -> TuneSpec:
    """--tune KEY=V1,V2,… or KEY=RANGE (repeatable; Hydra's sweep syntax: range(…) and choice(…) lists, and
    hydra-optuna-sweeper's interval(…) ranges with the tags log and int) → a TuneSpec; ConfigError naming the fix for
    a key that cannot be tuned, a grid of fewer than 2 values, a malformed range, a test metric, a bad mode, seed
    count, sampler, pruner or trial budget. sampler None: the grid for lists, TPE where a key is a range."""
    parser = OverridesParser.create()
    dims: Dict[str, object] = {}
    for item in items:
        try:
            ov = parser.parse_overrides([item])[0]
        except HydraException as e:
            raise ConfigError(f"--tune {item!r} is not KEY=V1,V2,… or KEY=interval(LOW,HIGH): {e}. Example: "
                              f"--tune optim.lr=0.003,0.03,0.3 or --tune optim.lr='tag(log,interval(1e-4,1e-1))'")
        key = ov.key_or_group
        _check_key(key)
        if key in dims:
            raise ConfigError(f"--tune {key} is given twice; give all its values once: --tune {key}=V1,V2,….")
        if ov.is_interval_sweep():
            dims[key] = parse_range(key, item, ov.value(), KEYS.by_key[key].type)
            continue
        values = list(ov.sweep_string_iterator()) if ov.is_sweep_override() else [ov.get_value_element_as_str()]
        values = list(dict.fromkeys(v for v in values if v != ""))
        if len(values) < 2:
            raise ConfigError(f"--tune {item}: a grid needs at least 2 values to choose from (got "
                              f"{len(values)}); to fix {key} at one value, pass {key}=VALUE as an override instead.")
        dims[key] = values
    if not dims:
        raise ConfigError("--tune needs KEY=V1,V2,… (e.g. --tune optim.lr=0.003,0.03,0.3).")
    if mode not in TUNE_MODES:
        raise ConfigError(f"--tune-mode {mode!r}: choose from {', '.join(TUNE_MODES)}.")
    if metric not in TUNE_METRICS:
        why = " (selection never sees the test split)" if "test" in metric else ""
        raise ConfigError(f"--tune-metric {metric!r}{why}: choose a validation metric from {', '.join(TUNE_METRICS)}.")
    if seeds < 1:
        raise ConfigError(f"--tune-seeds {seeds}: at least 1 tuning seed (2 or more to average out seed noise).")
    space = Space(tuple(dims.items()))
    sampler = sampler or ("tpe" if space.has_range else "grid")
    if sampler not in TUNE_SAMPLERS:
        raise ConfigError(f"--tune-sampler {sampler!r}: choose from {', '.join(TUNE_SAMPLERS)}.")
    if pruner not in TUNE_PRUNERS:
        raise ConfigError(f"--tune-pruner {pruner!r}: choose from {', '.join(TUNE_PRUNERS)}.")
    if sampler == "grid" and space.has_range:
        ranged = next(k for k, v in space.dims if isinstance(v, Range))
        raise ConfigError(f"--tune-sampler grid needs a list of values, and {ranged} is a range; use "
                          f"--tune-sampler tpe or random for a range, or list the grid's values ({ranged}=a,b,c).")
    points = 0 if space.has_range else math.prod(len(v) for v in space.grid().values())
    if trials is not None and trials < 1:
        raise ConfigError(f"--tune-trials {trials}: the budget is at least 1 trial per variant (e.g. --tune-trials "
                          f"{DEFAULT_RANGE_TRIALS}).")
    if trials is not None and sampler == "grid" and trials != points:
        raise ConfigError(f"--tune-trials {trials} with the grid sampler: the grid has {points} points and each is "
                          f"one trial; drop --tune-trials, or sample {trials} of them with --tune-sampler random.")
    trials = trials or (points or DEFAULT_RANGE_TRIALS)
    return TuneSpec(space, list(range(TUNE_SEED_BASE, TUNE_SEED_BASE + seeds)), mode, metric, sampler, pruner,
                    trials)


def _check_key(key: str) -> None:
    spec = KEYS.by_key.get(key)
    if key == "seed":
        raise ConfigError("--tune seed: the seed is the replicate, not a hyperparameter; give evaluation seeds as "
                          "seed=range(N) and the number of tuning seeds as --tune-seeds.")
    if spec is None:
        raise ConfigError(f"--tune {key}: not a config key.{did_you_mean(key, KEYS.by_key)} `bnablate list options` "
                          "lists them (tune e.g. optim.lr, optim.weight_decay, train.batch_size).")
    if spec.role is not Role.RESULT:
        raise ConfigError(f"--tune {key}: a {spec.role.value} key cannot change the results, so there is nothing to "
                          "select; tune a result key (`bnablate list options` shows each key's role).")


def _cell(job: Sequence[str], tuned: Sequence[str]) -> Cell:
    return tuple(i for i in job if _key(i) not in ("seed", "out_dir", *tuned))


def cells_of(plan: SweepPlan, tuned: Sequence[str]) -> Dict[Cell, List[int]]:
    """The sweep's grid points (overrides without seed, out_dir and the tuned keys) → their evaluation seeds."""
    cells: Dict[Cell, List[int]] = {}
    for job, cfg in zip(plan.jobs, plan.configs):
        cells.setdefault(_cell(job, tuned), []).append(int(cfg.seed))
    return cells


def check_tune(plan: SweepPlan, spec: TuneSpec) -> None:
    """The sweep and the tuning fit together; ConfigError naming the fix, before anything trains."""
    seeds = sorted({int(c.seed) for c in plan.configs})
    if len(seeds) < 2:
        raise ConfigError(f"--tune compares variants on evaluation seeds: the sweep has {len(seeds)} "
                          f"({','.join(map(str, seeds))}); give at least 2, e.g. seed=range(5).")
    overlap = sorted(set(seeds) & set(spec.seeds))
    if overlap:
        raise ConfigError(f"tuning seeds {','.join(map(str, spec.seeds))} overlap the evaluation seeds at "
                          f"{','.join(map(str, overlap))}: a value chosen on a seed must not be scored on it; use "
                          f"evaluation seeds below {TUNE_SEED_BASE}.")
    short = sorted({int(c.train.epochs) for c in plan.configs if int(c.train.epochs) < 2})
    if spec.pruner != "none" and short:
        raise ConfigError(f"--tune-pruner {spec.pruner} stops a trial between epochs, and these runs train "
                          f"{short[0]} epoch: there is nothing to prune. Train longer (train.epochs=5) or drop "
                          f"--tune-pruner.")
    for key in spec.keys:
        values = {str(_get(c, key)) for c in plan.configs}
        if any(_key(i) == key for job in plan.jobs for i in job) and len(values) > 1:
            raise ConfigError(f"{key} is both swept ({', '.join(sorted(values))}) and tuned; drop it from the "
                              f"overrides (--tune chooses it per variant) or from --tune.")


def _get(cfg, dotted: str):
    """The key's value in a composed config; None where its model does not declare it (model.pool on an mlp)."""
    return OmegaConf.select(cfg, dotted)


def merge(plans: Sequence[SweepPlan], data: DataCache) -> SweepPlan:
    """One plan holding the jobs, configs and keys of several, for reading them together (out_dirs, keys, cells);
    each part trains as its own sweep (`run_parts`), where its packs were planned."""
    merged = SweepPlan(overrides=[], jobs=[j for p in plans for j in p.jobs], launcher=plans[0].launcher, data=data)
    merged.configs = [c for p in plans for c in p.configs]
    merged.keys = [k for p in plans for k in p.keys]
    return merged


def run_parts(plans: Sequence[SweepPlan], reporter: Reporter) -> None:
    for part in plans:
        run_sweep(part, reporter)


def plan_tuning(plan: SweepPlan, spec: TuneSpec) -> Tuple[List[SweepPlan], List[str]]:
    """Stage 1: every cell × every candidate × every tuning seed, into OUT_DIR/tuning, one part per cell (its
    candidates and seeds are the natural pack: one architecture, K configurations); every job checked. Returns the
    parts and, per job of the parts in order, the cell it tunes (as text). For a study (spec.study) the parts are
    only checked — at both ends of each range — and the study trains what its sampler asks."""
    seeds = f"seed={','.join(map(str, spec.seeds))}"
    grid = [f"{k}={','.join(v)}" for k, v in spec.grid.items()] if not spec.space.has_range else [
        f"{k}={','.join(v.ends() if isinstance(v, Range) else v)}" for k, v in spec.space.dims]  # a study: checked
    parts, owners = [], []
    for cell, cfg in _cells_with_config(plan, spec):
        part = plan_sweep(list(cell) + grid + [seeds, f"out_dir={tuning_dir(Path(cfg.out_dir))}"], data=plan.data)
        parts.append(part)
        owners += [" ".join(cell)] * len(part.jobs)
    return parts, owners


def _cells_with_config(plan: SweepPlan, spec: TuneSpec):
    """Each cell with the config of its first job (for its output folder)."""
    seen = {}
    for job, cfg in zip(plan.jobs, plan.configs):
        seen.setdefault(_cell(job, spec.keys), cfg)
    return list(seen.items())


@dataclass
class Selection:
    """The tuning's outcome: per cell the selected values, with every candidate's score (candidates.csv)."""
    table: pd.DataFrame  # one row per cell: cell, compared label, selected.<key>…, score, budget, mode, metric
    candidates: pd.DataFrame  # one row per cell × candidate: values, mean score, runs ok/diverged/failed, rank
    notes: List[str] = field(default_factory=list)

    def values(self, cell: Cell, spec: TuneSpec) -> Tuple[str, ...]:
        row = self.table[self.table["cell"] == " ".join(cell)].iloc[0]
        return tuple(f"{k}={row[f'selected.{k}']}" for k in spec.keys)


def score_candidates(runs: pd.DataFrame, spec: TuneSpec) -> pd.DataFrame:
    """Per cell × candidate: the mean validation score over the tuning seeds and how many runs finished. runs: the
    tuning runs with columns cell, candidate (index into spec.candidates), status and spec.metric."""
    lower = spec.metric.endswith("loss")
    rows = []
    for (cell, cand), g in runs.groupby(["cell", "candidate"], sort=False):
        ok = g["status"] == "ok"
        score = pd.to_numeric(g[spec.metric], errors="coerce")
        rows.append({"cell": cell, "candidate": cand, "label": g["label"].iloc[0], "context": g["context"].iloc[0],
                     "n_ok": int(ok.sum()), "n_diverged": int((g["status"] == "diverged").sum()),
                     "n_failed": int((g["status"] == "failed").sum()), "n_runs": len(g),
                     "score": float(score.mean()) if score.notna().all() and len(g) else math.nan})
    frame = pd.DataFrame(rows)
    frame["_order"] = -frame["score"] if lower else frame["score"]  # larger is better; NaN: a run has no score
    return frame


def _best(frame: pd.DataFrame, n_seeds: int) -> int:
    """The rule: candidates whose every tuning run finished (status ok, all seeds present) come first; among them the
    best mean validation score; a tie goes to the earlier candidate in the declared grid order."""
    clean = (frame["n_ok"] == n_seeds) & frame["_order"].notna()
    pool = frame[clean] if clean.any() else frame[frame["_order"].notna()]
    if pool.empty:
        return -1
    best = pool["_order"].max()
    return int(pool[pool["_order"] >= best - 1e-12]["candidate"].min())


def select(scores: pd.DataFrame, spec: TuneSpec) -> Tuple[Dict[str, int], List[str]]:
    """cell → chosen candidate index (per variant, or per context in shared mode, where a candidate's score is its
    mean over the context's variants and it is clean only if clean in every variant); notes for cells whose every
    candidate failed or diverged."""
    chosen, notes = {}, []
    n = len(spec.seeds)
    if spec.mode == "per-variant":
        for cell, g in scores.groupby("cell", sort=False):
            chosen[cell] = _best(g, n)
    else:
        for context, g in scores.groupby("context", sort=False):
            agg = g.groupby("candidate", sort=True).agg(
                n_ok=("n_ok", "min"), _order=("_order", lambda x: x.mean(skipna=False))).reset_index()
            pick = _best(agg, n)
            for cell in g["cell"].unique():
                chosen[cell] = pick
    for cell, pick in chosen.items():
        if pick < 0:
            notes.append(f"{cell}: every tuning candidate failed; this cell is not evaluated (widen the grid toward "
                         "smaller learning rates, or look at the tuning runs' errors in tuning/runs.csv).")
    return chosen, notes


def run_selection(tplan: SweepPlan, owners: Sequence[str], plan: SweepPlan, spec: TuneSpec) -> Selection:
    """Read the tuning runs' records (the keys the tuning plan made, every one recorded: await_runs), score and
    select; write selection.csv and candidates.csv in OUT_DIR/tuning."""
    from .results import rebuild_tables

    index = {}  # run key → (cell, candidate)
    labels = {}  # cell → (compared group's label, its context: the cell without the compared key)
    compared = split_baseline(str(plan.configs[0].sweep.baseline))[0]
    candidates = spec.candidates
    for job, cfg, key, cell in zip(tplan.jobs, tplan.configs, tplan.keys, owners):
        index[key] = (cell, candidates.index(tuple(f"{k}={_item(job, k)}" for k in spec.grid)))
        labels[cell] = (_label(cfg, compared), " ".join(i for i in cell.split(" ") if _key(i) != compared))
    frames = [rebuild_tables(folder)[1] for folder in tplan.out_dirs]
    runs = pd.concat([f for f in frames if not f.empty], ignore_index=True)
    runs = runs[runs["run_key"].isin(index)].copy()
    runs["cell"] = [index[k][0] for k in runs["run_key"]]
    runs["candidate"] = [index[k][1] for k in runs["run_key"]]
    runs["label"] = [labels[c][0] for c in runs["cell"]]
    runs["context"] = [labels[c][1] for c in runs["cell"]]
    scores = score_candidates(runs, spec)
    chosen, notes = select(scores, spec)
    scores["selected"] = [chosen.get(c) == k for c, k in zip(scores["cell"], scores["candidate"])]
    for i, key in enumerate(spec.grid):
        scores[key] = [candidates[k][i].split("=", 1)[1] for k in scores["candidate"]]
    return _selection(plan, spec, scores, chosen, notes, compared, labels)


def _selection(plan: SweepPlan, spec: TuneSpec, scores: pd.DataFrame, chosen: Dict[str, int], notes: List[str],
               compared: str, labels: Dict[str, Tuple[str, str]]) -> Selection:
    """selection.csv's rows (one per cell: its selected values from its chosen candidate's row of scores) and
    candidates.csv, written into each output folder's tuning/. A study's rows add its sampler, pruner, trial budget
    and the epochs the cell's tuning runs trained."""
    rows = []
    for cell, pick in chosen.items():
        g = scores[(scores["cell"] == cell) & (scores["candidate"] == pick)]
        row = {"cell": cell, "compared": compared, "group": labels[cell][0], "context": labels[cell][1]}
        for key in spec.keys:
            row[f"selected.{key}"] = str(g[key].iloc[0]) if pick >= 0 and len(g) else ""
        row.update(score=float(g["score"].iloc[0]) if len(g) else math.nan, metric=spec.metric, mode=spec.mode,
                   candidates=spec.trials if spec.study else len(spec.candidates),
                   tune_seeds=",".join(map(str, spec.seeds)), budget=spec.budget,
                   grid=spec.space.text() if spec.study else "; ".join(f"{k}={','.join(v)}"
                                                                        for k, v in spec.grid.items()))
        if spec.study:
            mine = scores[scores["cell"] == cell]
            row.update(sampler=spec.sampler, pruner=spec.pruner, trials=len(mine), epochs=int(mine["epochs"].sum()),
                       pruned=int((mine["state"] == "pruned").sum()))
        rows.append(row)
    table = pd.DataFrame(rows)
    for folder in {Path(c.out_dir) for c in plan.configs}:
        write_selection(folder, table, scores.drop(columns=["_order"]))
    return Selection(table, scores.drop(columns=["_order"]), notes)


def study_selection(plan: SweepPlan, spec: TuneSpec, reporter: Reporter, wait: Wait) -> Selection:
    """Tune every cell by its Optuna study (tune_study.py) and select among the finished trials by the grid's rule."""
    from .tune_study import tune_by_study

    compared = split_baseline(str(plan.configs[0].sweep.baseline))[0]
    cells = dict(_cells_with_config(plan, spec))
    labels = {" ".join(c): (_label(cfg, compared), " ".join(i for i in c if _key(i) != compared))
              for c, cfg in cells.items()}
    scores = tune_by_study(plan, spec, reporter, cells, labels, wait)
    chosen, notes = select(scores, spec)
    scores["selected"] = [chosen.get(c) == k for c, k in zip(scores["cell"], scores["candidate"])]
    return _selection(plan, spec, scores, chosen, notes, compared, labels)


def _item(job: Sequence[str], key: str) -> str:
    return next(i.split("=", 1)[1] for i in job if _key(i) == key)


def _label(cfg, compared: str) -> str:
    from .variants import config_label

    return config_label(cfg) if compared == "variant" else str(_get(cfg, compared))


def plan_evaluation(plan: SweepPlan, spec: TuneSpec, selection: Selection) -> List[SweepPlan]:
    """Stage 2: every cell at its selected values on its evaluation seeds, into OUT_DIR, one part per cell (cells
    whose every candidate failed are left out: selection.notes says so)."""
    out = [i for i in plan.overrides if _key(i) == "out_dir"][-1:]  # as given (default: the preset's folder)
    parts = []
    for cell, seeds in cells_of(plan, spec.keys).items():
        row = selection.table[selection.table["cell"] == " ".join(cell)]
        if row.empty or not all(row[f"selected.{k}"].iloc[0] for k in spec.keys):
            continue
        parts.append(plan_sweep(list(cell) + list(selection.values(cell, spec)) +
                                [f"seed={','.join(map(str, sorted(seeds)))}"] + out, data=plan.data))
    if not parts:
        raise ConfigError("every cell's tuning failed, so nothing is evaluated; see tuning/candidates.csv.")
    return parts


def run_tuning(plan: SweepPlan, spec: TuneSpec, reporter: Reporter,
               tuning: Optional[Tuple[List[SweepPlan], List[str]]] = None,
               wait: Wait = Wait()) -> Tuple[List[SweepPlan], Selection]:
    """Stage 1 (train the tuning runs, resuming finished ones; `tuning`: plan_tuning's result when the caller
    planned it already; runs another process is training are waited for, as `wait` says, since selecting from part
    of the grid would choose differently from a rerun), the selection, and stage 2's plan (not trained: the caller
    runs it plainly or --until-decided)."""
    parts, owners = tuning if tuning is not None else plan_tuning(plan, spec)
    if spec.study:
        selection = study_selection(plan, spec, reporter, wait)
    else:
        tplan = merge(parts, plan.data)
        reporter.runs_added(tplan)
        run_parts(parts, reporter)
        await_runs(tplan.keys, tplan.out_dirs, "tuning runs", "Nothing was selected or evaluated",
                   lambda keys: run_parts([p for p in parts if keys & set(p.keys)], reporter), wait, reporter)
        selection = run_selection(tplan, owners, plan, spec)
    reporter.tuning_done(selection, spec)
    return plan_evaluation(plan, spec, selection), selection
