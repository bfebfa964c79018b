"""`sweep --until-decided`: train the grid, look at its comparisons with the report's own statistics, add seeds only
to the groups of undecided comparisons (with `--goal best`: to the variants still in the race), and look again —
until every comparison is decided, the race is won, or the budget — logging every look to decisions.csv. The
intervals are anytime-valid (or the plan's design, valid at its planned looks), so stopping at a look keeps the
error rate."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import pandas as pd
from omegaconf import OmegaConf

from .atomic import atomic_write_text
from .keys import override_key
from .reports.best import races
from .reports.metrics import in_points, metric_info
from .reports.sources import load_sources
from .reports.summary import as_labels, build_report
from .schedule import DEFAULT_MAX_SEEDS, DEFAULT_SEED_STEP, Schedule, check_budget
from .stats.designs import ANYTIME, Design
from .stats.race import Race
from .sweep_plan import DataCache, SweepPlan, distinguishing_labels, plan_sweep
from .sweeps import Reporter, run_sweep
from .train import ConfigError
from .variants import config_label
from .waiting import Wait, await_runs

DECISIONS = "decisions.csv"

Cell = Tuple[str, ...]  # a grid point: its job's overrides without the seed


@dataclass
class Look:
    """One look: the schedule's seeds, the comparisons as the report computes them, and what comes next."""
    index: int
    seeds: List[int]
    comparisons: pd.DataFrame
    active: List[Cell] = field(default_factory=list)  # cells that get the next seeds (none: stop)
    new_seeds: List[int] = field(default_factory=list)
    stop: str = ""  # why it stopped ("" while it goes on)
    all_cells: List[Cell] = field(default_factory=list)  # every cell of the sweep (to label the active ones)
    races: Dict[str, Race] = field(default_factory=dict)  # --goal best: each family's race after this look

    def counts(self) -> Dict[str, int]:
        return self.comparisons["verdict"].value_counts().to_dict() if not self.comparisons.empty else {}

    def active_labels(self) -> List[str]:
        """Each active cell by the overrides that tell the sweep's cells apart (e.g. 'variant=no_bn')."""
        return distinguishing_labels(self.active, self.all_cells)


def _cell(job: Sequence[str]) -> Cell:
    return tuple(item for item in job if not item.startswith("seed="))


def grid_cells(plan: SweepPlan) -> Dict[Cell, Dict[int, str]]:
    """cell → {seed: run key} for the plan's jobs."""
    cells: Dict[Cell, Dict[int, str]] = {}
    for job, cfg, key in zip(plan.jobs, plan.configs, plan.keys):
        cells.setdefault(_cell(job), {})[int(cfg.seed)] = key
    return cells


def next_seeds(seeds: Sequence[int], step: int, max_seeds: int) -> List[int]:
    """The next `step` integers above the largest seed, never past `max_seeds` seeds in all (deterministic)."""
    room = max(0, min(step, max_seeds - len(seeds)))
    top = max(seeds)
    return list(range(top + 1, top + 1 + room))


def compared_groups(plan: SweepPlan, compared: str) -> Dict[Tuple[str, ...], set]:
    """Each context of the grid (a cell's overrides other than the compared factor's) → the compared labels in it:
    the families as the report will form them, known before anything trains."""
    out: Dict[Tuple[str, ...], set] = {}
    prefix = "variant" if compared == "variant" else compared
    for job, cfg in zip(plan.jobs, plan.configs):
        context = tuple(i for i in _cell(job) if not override_key(i).startswith(prefix))
        label = config_label(cfg) if compared == "variant" else str(OmegaConf.select(cfg, compared))
        out.setdefault(context, set()).add(label)
    return out


@dataclass
class LookOptions:
    """The report options the looks decide with (the same ones the end-of-sweep report uses)."""
    metric: str
    alpha: float
    margin: Optional[float]
    compare: str  # baseline | pairs | best (--goal)
    baseline: str
    design: Design = ANYTIME

    @classmethod
    def of(cls, plan: SweepPlan, design: Design = ANYTIME) -> "LookOptions":
        """The first job's (plan_sweep checked every job's report options)."""
        cfg = plan.configs[0]
        return cls(str(cfg.report.metric), float(cfg.report.alpha),
                   None if cfg.report.margin is None else float(cfg.report.margin), str(cfg.report.compare),
                   str(cfg.sweep.baseline), design)


def check_until_decided(plan: SweepPlan, schedule: Schedule) -> LookOptions:
    """Every option of --until-decided (and --design/--goal) checked before anything trains; ConfigError naming
    the fix."""
    first = plan.configs[0]
    if any(str(c.report) != str(first.report) or c.sweep.baseline != first.sweep.baseline for c in plan.configs):
        raise ConfigError("--until-decided needs one set of report options (report.*, sweep.baseline) for the whole "
                          "sweep; set them once on the command line.")
    settings = LookOptions.of(plan, schedule.design)
    groups, sizes = family_sizes(plan, settings)
    check_budget(schedule, len({int(c.seed) for c in plan.configs}), sizes, settings.alpha, settings.compare,
                 min((len(g) for g in groups.values()), default=0),
                 metric_info(settings.metric).margin_points(settings.margin) is not None)
    return settings


def family_sizes(plan: SweepPlan, settings: LookOptions) -> Tuple[Dict[Tuple[str, ...], set], List[int]]:
    """The grid's families as the report will form them (context → compared labels) and each one's number of
    comparisons under settings.compare."""
    from .reports.comparisons import split_baseline

    groups = compared_groups(plan, split_baseline(settings.baseline)[0])
    sizes = [len(g) - 1 if settings.compare == "baseline" else len(g) * (len(g) - 1) // 2 for g in groups.values()]
    return groups, sizes


def look_frame(out_dirs: Sequence[Path], keys: Sequence[str]) -> Tuple[pd.DataFrame, pd.DataFrame, List[str]]:
    """The results and runs of exactly these run keys (other runs in the folders are not part of this sweep)."""
    src = load_sources(out_dirs)
    wanted = set(keys)
    runs = src.runs[src.runs["run_key"].isin(wanted)] if not src.runs.empty else src.runs
    results = src.results[src.results["run_key"].isin(wanted)] if not src.results.empty else src.results
    return results, runs, src.identifying


def look_keys(cells: Dict[Cell, Dict[int, str]], seeds: Sequence[int]) -> List[str]:
    """The run keys of the cells' runs at these seeds."""
    return [k for by_seed in cells.values() for s, k in by_seed.items() if s in seeds]


def decide_look(index: int, seeds: List[int], cells: Dict[Cell, Dict[int, str]], out_dirs: Sequence[Path],
                settings: LookOptions) -> Look:
    """Build the report's comparisons on the cells' runs at these seeds (every one recorded: await_runs) and list
    the cells of undecided ones."""
    results, runs, identifying = look_frame(out_dirs, look_keys(cells, seeds))
    if runs.empty:
        return Look(index, seeds, pd.DataFrame(), all_cells=list(cells))
    # the verdicts only: the test-image bootstrap (descriptive) is left to the final report
    report = build_report(results, runs, identifying, metric=settings.metric, baseline=settings.baseline,
                          alpha=settings.alpha, margin=settings.margin, compare=settings.compare,
                          design=settings.design)
    look = Look(index, seeds, report.comparisons, all_cells=list(cells))
    if report.comparisons.empty:
        return look
    context = [c for c in report.by if c != report.compared]
    family = as_labels(runs, context).agg(" · ".join, axis=1) if context else pd.Series("all runs", index=runs.index)
    label = as_labels(runs, [report.compared])[report.compared]
    if settings.compare == "best":  # the variants still in the race of each family not yet won
        look.races = races(report.comparisons, report.settings)
        wanted = {(f, str(x)) for f, r in look.races.items() if not r.done for x in r.survivors}
    else:
        open_ = report.comparisons[report.comparisons["verdict"] == "undecided"]
        wanted = {(f, str(x)) for f, a, b in zip(open_["family"], open_["a"], open_["b"]) for x in (a, b)}
    active_keys = set(runs.loc[[(f, g) in wanted for f, g in zip(family, label)], "run_key"])
    look.active = [cell for cell, by_seed in cells.items() if active_keys & set(by_seed.values())]
    return look


LOG_COLUMNS = ["grid", "look", "n_seeds", "seeds", "family", "a", "b", "n_pairs", "diff", "ci_low", "ci_high",
               "ci_level", "e_value", "boundary", "p_adj", "p_tost_adj", "verdict", "seeds_needed", "action", "unit"]
# diff, ci_low and ci_high in display points (`unit`: "points" for accuracies); blocks written before the unit column
# existed are kept as they were (fractions, their unit empty)


def grid_id(cells: Dict[Cell, Dict[int, str]]) -> str:
    """The sweep's name in decisions.csv: a hash of the run keys it planned before any look, so a rerun (with any
    execution options: they leave run keys alone) finds its own rows and other sweeps' rows in the folder stay."""
    keys = sorted(k for by_seed in cells.values() for k in by_seed.values())
    return hashlib.sha1(" ".join(keys).encode()).hexdigest()[:12]


def write_log(folder: Path, grid: str, rows: List[dict]) -> None:
    """decisions.csv with this grid's looks in place of its earlier ones; other grids' blocks (several sweeps into
    one folder, as the reproductions do) are kept in their order, as text, byte for byte. Rows of files from before
    the grid column are dropped, as every look used to rewrite the whole file."""
    path = folder / DECISIONS
    text = pd.DataFrame(rows, columns=LOG_COLUMNS).to_csv(index=False, float_format="%.10g")
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    old = pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None
    if old is not None and "grid" in old.columns:
        order = list(dict.fromkeys([*old["grid"], grid]))
        table = pd.concat([table if g == grid else old[old["grid"] == g] for g in order], ignore_index=True)
    atomic_write_text(path, table.reindex(columns=LOG_COLUMNS).to_csv(index=False))


def log_rows(look: Look, alpha: float, grid: str, before: Optional[Dict[str, Race]] = None,
             metric: str = "final_test_acc") -> List[dict]:
    """decisions.csv rows of one look: every comparison's statistic (differences in the metric's display points,
    metrics.in_points), boundary (1/level: the value E_n had to reach, k/α under Bonferroni) and what the look did
    next; with --goal best, a row per variant eliminated at this look (a: the loser, b: a variant decided better)
    and, when the race is won, one with its claim."""
    rows = []
    for _, c in in_points(look.comparisons, metric_info(metric)).iterrows():
        if c["verdict"] != "undecided":
            action = "decided"
        elif look.new_seeds:
            action = f"add seeds {','.join(map(str, look.new_seeds))}"
        else:
            action = f"stop: {look.stop}"
        holm = "Holm" in str(c.get("method", ""))
        rows.append({"grid": grid, "look": look.index, "n_seeds": len(look.seeds),
                     "seeds": ",".join(map(str, look.seeds)),
                     **{k: c[k] for k in ("family", "a", "b", "n_pairs", "diff", "ci_low", "ci_high", "ci_level",
                                          "e_value", "p_adj", "p_tost_adj", "verdict", "seeds_needed", "unit")},
                     "boundary": 1 / (1 - c["ci_level"]) if holm else c["family_size"] / alpha, "action": action})
    for fam, r in look.races.items():
        old = (before or {}).get(fam)
        base = {"grid": grid, "look": look.index, "n_seeds": len(look.seeds), "seeds": ",".join(map(str, look.seeds)),
                "family": fam}
        for loser, winner in r.eliminated.items():
            if old is None or loser not in old.eliminated:
                rows.append({**base, "a": loser, "b": winner, "verdict": "eliminated",
                             "action": f"no more seeds for {loser}: {winner} is decided better"})
        if r.done:
            rows.append({**base, "a": " / ".join(r.certified), "verdict": "tied" if r.tied else "best",
                         "action": f"stop: {r.claim('the margin')}"})
    return rows


def plan_seeds(wanted: Dict[Cell, List[int]], data: DataCache) -> List[Tuple[Cell, SweepPlan]]:
    """Each cell with the plan of its wanted seeds (cells without any left out), every one planned and checked
    before any trains."""
    return [(cell, plan_sweep(list(cell) + [f"seed={','.join(map(str, seeds))}"], data=data))
            for cell, seeds in wanted.items() if seeds]


def run_until_decided(plan: SweepPlan, reporter: Reporter, schedule: Schedule = Schedule(),
                      train: Optional[Callable[[], None]] = None, grid: Optional[str] = None, wait: Wait = Wait()
                      ) -> Tuple[List[Look], List[str]]:
    """Train the planned grid, then look, add seeds where undecided (or to the race's survivors), and look again;
    decisions.csv in every output folder holds every look. Returns the looks and the run keys of every run the
    sweep planned. Deterministic: a rerun replays the same looks on the same records and trains only what is
    missing (kill -9 at any point loses at most the run in training). grid: the sweep's name in decisions.csv when
    the caller planned it (a plan's first look extends the command's seeds). A look whose runs another process is
    training waits for them (wait: how long; a look on part of the seeds would log a decision a rerun cannot replay)
    and trains those whose claim went stale. The caller checks the options first (check_until_decided)."""
    # the options were checked on the sweep's own grid (check_until_decided, before tuning: a tuned grid's cells
    # differ per variant in the tuned keys, so its families cannot be read off the cells)
    settings = LookOptions.of(plan, schedule.design)
    cells = grid_cells(plan)
    grid = grid or grid_id(cells)
    seeds = sorted({s for by_seed in cells.values() for s in by_seed})
    data: DataCache = plan.data
    train() if train is not None else run_sweep(plan, reporter)  # train: a plan of parts (sweep --tune) runs each
    looks: List[Look] = []
    rows: List[dict] = []
    races: Dict[str, Race] = {}

    def retrain(keys: Set[str]) -> None:  # runs whose claim went stale without a record: trained here
        wanted = {cell: [s for s, k in by_seed.items() if k in keys] for cell, by_seed in cells.items()}
        for _, part in plan_seeds(wanted, data):
            run_sweep(part, reporter)

    while True:
        await_runs(look_keys(cells, seeds), plan.out_dirs, f"runs of look {len(looks)}",
                   "This look was not taken, nor logged to decisions.csv", retrain, wait, reporter)
        look = decide_look(len(looks), seeds, cells, plan.out_dirs, settings)
        k = int(look.comparisons["family_size"].max()) if not look.comparisons.empty else 1
        target = schedule.next_count(len(seeds), k, settings.alpha)
        if not look.active:
            look.stop = ("the race is won" if look.races else "every comparison decided") \
                if not look.comparisons.empty else "no comparisons"
        elif target is None:
            look.stop = (f"the plan's last look ({schedule.max_seeds} seeds) reached" if schedule.design.kind !=
                         "anytime" else f"--max-seeds {schedule.max_seeds} reached")
            look.active = []
        else:
            look.new_seeds = next_seeds(seeds, target - len(seeds), target)
        looks.append(look)
        rows += log_rows(look, settings.alpha, grid, races, settings.metric)
        races = look.races
        for folder in plan.out_dirs:
            write_log(folder, grid, rows)
        reporter.look_done(look)
        if look.stop:
            return looks, [k for by_seed in cells.values() for k in by_seed.values()]
        seeds = seeds + look.new_seeds
        # an active cell gets every seed of the schedule it lacks: the new ones, and those it skipped while decided
        # (pairs mode can reopen a comparison), so its pairs never have gaps
        extras = plan_seeds({cell: [s for s in seeds if s not in cells[cell]] for cell in look.active}, data)
        for cell, extra in extras:
            for cfg, key in zip(extra.configs, extra.keys):
                cells[cell][int(cfg.seed)] = key
            reporter.runs_added(extra)
        for _, extra in extras:
            run_sweep(extra, reporter)


def describe_rule(schedule: Schedule) -> str:
    return f"{schedule.describe()}; every look is logged to {DECISIONS}"


def decidable_lines(plan: SweepPlan, schedule: Schedule, settings: LookOptions) -> List[str]:
    """For `--dry-run`: per family, its comparisons and the fewest seeds per group at which any verdict is possible
    under the schedule's design (stats.minimum.fewest_seeds), against the budget — so the question can be shrunk
    (fewer variants, --goal best, a coarser margin) before anything trains."""
    return [f"family {r['family']}: {r['comparisons']} comparison(s) at α={settings.alpha:g}: no verdict is possible "
            f"before {r['fewest_seeds']} seeds per group (budget {r['budget']})"
            for r in fewest_table(plan, schedule, settings)]


def fewest_table(plan: SweepPlan, schedule: Schedule, settings: LookOptions) -> List[Dict[str, object]]:
    """Per family with comparisons: its name, comparisons, the fewest seeds per group at which any verdict is
    possible under the schedule's design (stats.minimum.fewest_seeds) and the budget."""
    from .stats.minimum import fewest_seeds

    groups, sizes = family_sizes(plan, settings)
    return [{"family": " · ".join(context) or "all runs", "comparisons": k,
             "fewest_seeds": fewest_seeds(k, settings.alpha, schedule.design), "budget": schedule.max_seeds}
            for context, k in zip(groups, sizes) if k >= 1]


__all__ = ["DECISIONS", "DEFAULT_MAX_SEEDS", "DEFAULT_SEED_STEP", "Look", "compared_groups", "decidable_lines",
           "describe_rule", "fewest_table",
           "family_sizes", "grid_cells", "grid_id", "next_seeds", "run_until_decided", "write_log"]
