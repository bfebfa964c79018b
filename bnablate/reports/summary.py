"""The report's summary: runs grouped by the factors that vary, per-group statistics (diverged runs counted),
time-to-target with censoring, and the comparisons with their verdicts (reports/comparisons.py, bnablate.stats)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..config import KEYS
from ..results.tables import FACTOR_COLUMNS
from ..stats import km_median, mean_ci
from ..stats.designs import ANYTIME, Design
from .best import race_notes
from .comparisons import Settings, attach_baseline, compare_groups, families, split_baseline, verdict_rank
from .metrics import check_report_options, lower_is_better, metric_info
from .referee import last_loss_drop, target_note, under_trained_note

__all__ = ["ALWAYS", "Report", "as_labels", "build_report", "default_by", "lower_is_better", "split_baseline",
           "time_to_target"]

# Columns that identify a run but are not factors to group by: the record's own columns, and every config key that
# is not a result (execution options, locations, labels; their roles are declared in bnablate/config.py) or the seed.
NOT_FACTORS = frozenset({"run_key", "status", "sweep", "error", *KEYS.not_factors})
# Variant axes are summarized by the `variant` label (a preset name or a label built from the axes) — except the
# dropout rate, which a preset's name leaves out (variant_label), so a sweep over it keeps dropout_p as a factor.
AXIS_COLUMNS = {"norm", "placement", "dropout", "bias", "activation", "groups", "variant.residual",
                "variant.residual_init", "variant.transformer"}
ALWAYS = ["dataset", "model", "variant"]
CI_METRICS = ("final_test_acc", "test_acc_at_best_val", "best_val_acc")
MEAN_METRICS = ("final_train_loss", "mean_epoch_time_s", "mean_samples_per_s", "n_params", "peak_mem_mb")
FINISHED = ("ok", "diverged")  # outcomes of training: both count; a failed run (a crash) has no outcome


# Config keys the schema declares int (or Optional[int]), by their table column (a factor's short name, or dotted)
_INTS = {spec.key for spec in KEYS.specs if spec.type in ("int", "Optional[int]")}
INT_KEYS = frozenset(_INTS | {short for short, dotted in FACTOR_COLUMNS.items() if dotted in _INTS})


def as_labels(frame: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """The columns as strings, missing values as '—' (a model-specific key is missing in other models' rows)."""
    part = frame[list(cols)].astype(object)
    for c in cols:
        col = frame[c]
        if c in INT_KEYS and col.dtype.kind == "f" and (col.dropna() % 1 == 0).all():
            # an integer key with gaps (one that some runs lack, e.g. GroupNorm's ghost batch size): pandas keeps it
            # as floats; label 256, as the runs' configs say, not 256.0 (float keys such as lr keep their form)
            part[c] = pd.Series([v if pd.isna(v) else int(v) for v in col], index=col.index, dtype=object)
    return part.where(part.notna(), "—").astype(str)


def default_by(runs: pd.DataFrame, identifying: Sequence[str]) -> List[str]:
    """dataset, model, variant, plus every other identifying column whose value differs between runs of one dataset
    and model (a key that differs only between models, like model.channels, or between datasets is not a factor)."""
    candidates = [c for c in identifying if c not in NOT_FACTORS and c not in AXIS_COLUMNS and c not in ALWAYS]
    labels = as_labels(runs, ALWAYS + candidates)
    within = labels.groupby(["dataset", "model"], sort=False)
    by = list(ALWAYS)
    for c in candidates:
        # a column that varies but splits no group further (it changes only together with a factor already chosen,
        # like finetune.source_epochs with finetune.source) names the same groups twice: not a factor of its own
        if (within[c].nunique() > 1).any() and labels.groupby(by + [c]).ngroups > labels.groupby(by).ngroups:
            by.append(c)
    return by


def time_to_target(results: pd.DataFrame, targets: pd.Series) -> pd.DataFrame:
    """Per run: optimizer steps, epochs and training seconds until validation accuracy first reaches its target, or,
    when it never does, the steps/epochs/seconds it trained (censored: reached False). `targets`: run_key → target."""
    rows = []
    for key, g in results.sort_values("epoch").groupby("run_key", sort=False):
        target = targets.get(key, math.nan)
        seconds = g["epoch_time_s"].cumsum()
        hit = g.index[g["val_acc"] >= target] if math.isfinite(target) else []
        at = hit[0] if len(hit) else g.index[-1]
        rows.append({"run_key": key, "target": target, "reached": bool(len(hit)), "steps_to_target": g.at[at, "steps"],
                     "epochs_to_target": g.at[at, "epoch"], "seconds_to_target": seconds.at[at]})
    return pd.DataFrame(rows, columns=["run_key", "target", "reached", "steps_to_target", "epochs_to_target",
                                       "seconds_to_target"])


@dataclass
class Report:
    summary: pd.DataFrame  # one row per group
    by: List[str]
    metric: str
    baseline: str
    alpha: float
    notes: List[str] = field(default_factory=list)
    views: Dict[str, pd.DataFrame] = field(default_factory=dict)  # extra tables (pivot, per-epoch) by title
    files: List[Path] = field(default_factory=list)  # what make_report wrote (tables, figures)
    bad_records: List[Any] = field(default_factory=list)  # schema.BadRecord: files of records/ left out, and why
    # one row per comparison: in the metric's units as build_report makes it (the verdicts and the race read it so);
    # in display points with a `unit` column, as comparisons.csv, once make_report returns it (metrics.in_points)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: Optional[Settings] = None

    @property
    def compared(self) -> str:
        """The column whose values are compared (variant, or COLUMN of --baseline COLUMN=VALUE); the other grouping
        columns form the contexts, one family of comparisons each."""
        return split_baseline(self.baseline)[0]

    @property
    def compare(self) -> str:
        return self.settings.compare if self.settings else "baseline"


def _finished_values(g: pd.DataFrame, column: str) -> Dict[int, float]:
    """seed → value over finished runs (ok and diverged: a diverged run counts at its last evaluated value, so an
    unstable variant is not judged on its survivors), finite values only."""
    done = g[g["status"].isin(FINISHED)]
    vals = pd.to_numeric(done[column], errors="coerce") if column in done else pd.Series(dtype=float)
    return {int(s): float(v) for s, v in zip(done["seed"], vals) if pd.notna(v) and math.isfinite(v)}


def _group_row(g: pd.DataFrame, metric: str) -> Dict[str, object]:
    ok = g[g["status"] == "ok"]
    done = g[g["status"].isin(FINISHED)]
    values = _finished_values(g, metric)
    # each group's own grid (its runs' image counts): the comparisons take the coarsest of their family's groups, so
    # a folder of another dataset reported beside these runs changes none of their floors
    resolution = {m: metric_info(m).resolution(g) for m in dict.fromkeys((metric,) + CI_METRICS)}
    row: Dict[str, object] = {"n_seeds": len(values), "n_runs": len(g),
                              "n_diverged": int((g["status"] == "diverged").sum()),
                              "n_failed": int((g["status"] == "failed").sum()),
                              "_values": values, "_resolution": resolution[metric],
                              "_runs": {int(s): k for s, k in zip(done["seed"], done["run_key"])},
                              "_status": {int(s): st for s, st in zip(g["seed"], g["status"])},
                              "_n_pruned": int((g["status"] == "pruned").sum())}
    for m in dict.fromkeys((metric,) + CI_METRICS):
        info = metric_info(m)
        res = resolution[m] if math.isfinite(resolution[m]) else 0.0  # descriptive: unrecorded grid, no floor
        est = mean_ci(list(_finished_values(g, m).values()), resolution=res, bounds=info.bounds)
        row.update({f"{m}_mean": est.mean, f"{m}_std": est.std, f"{m}_ci_low": est.ci_low, f"{m}_ci_high": est.ci_high})
    for m in MEAN_METRICS + ("train_loss_last_drop",):
        row[f"{m}_mean"] = float(pd.to_numeric(ok[m], errors="coerce").mean()) if m in ok and len(ok) else math.nan
    reached = done["reached"].fillna(False).astype(bool) if "reached" in done else pd.Series(False, index=done.index)
    row["target"] = float(g["target"].iloc[0]) if "target" in g and len(g) else math.nan
    row["reached"] = f"{int(reached.sum())}/{len(done)}"
    for m in ("steps_to_target", "epochs_to_target", "seconds_to_target"):
        if m not in done:
            row[f"{m}_median"] = math.nan
            continue
        # a diverged run that never reached the target never will: it is censored after every other run
        t = np.where(reached | (done["status"] == "ok"), pd.to_numeric(done[m], errors="coerce"), np.inf)
        row[f"{m}_median"] = km_median(t, reached.to_numpy())
    return row


def _check_one_run_per_seed(runs: pd.DataFrame, keys: List[pd.Series], by: Sequence[str],
                            identifying: Sequence[str]) -> None:
    """A group must hold one run per seed: otherwise a factor that varies was left out of --by, and its runs would
    be averaged into one mean while the pairing by seed kept only one of them."""
    frame = pd.concat(keys, axis=1).set_axis(list(by), axis=1).assign(seed=runs["seed"].to_numpy())
    dup = frame.duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    first = frame[dup].iloc[0]
    rows = runs[(frame[list(by)] == first[list(by)]).all(axis=1).to_numpy()]  # the first such group, every seed
    varying = [c for c in identifying if c in rows and c not in ("run_key", "status", "seed", "sweep") and
               c not in by and c not in AXIS_COLUMNS and as_labels(rows, [c])[c].nunique() > 1]
    group = " / ".join(str(first[c]) for c in by)
    raise ValueError(f"The group {group} holds {len(rows)} runs for {rows['seed'].nunique()} seed(s): they differ "
                     f"in {', '.join(varying) or 'a column left out of --by'}. Add "
                     f"{varying[0] if varying else 'that column'} to --by (e.g. --by {','.join([*by, *varying[:1]])}), "
                     f"or report the folders separately.")


def build_report(results: pd.DataFrame, runs: pd.DataFrame, identifying: Sequence[str], metric: str = "final_test_acc",
                 baseline: str = "no_bn", target: Optional[float] = None, by: Optional[Sequence[str]] = None,
                 alpha: float = 0.05, margin: Optional[float] = None, compare: str = "baseline",
                 correctness: Optional[Mapping[str, np.ndarray]] = None, not_factors: Sequence[str] = (),
                 design: Design = ANYTIME) -> Report:
    """Summarize runs (runs.csv rows, results.csv rows) into one row per group with CIs, and compare the groups
    (with the baseline, or all pairs) with verdicts: better / worse / equivalent (within `margin` metric points) /
    undecided — or, compare="best", all pairs and which group is best within the margin. correctness: run key →
    which test images it got right (records that recorded it). not_factors: columns never chosen as factors by
    default (keys `sweep --tune` chose per group). design: a plan's (plans.py); families whose runs do not match it
    are judged with the anytime-valid intervals, and the notes say so."""
    if runs.empty:
        return Report(pd.DataFrame(), list(by or ALWAYS), metric, baseline, alpha, ["no runs found"])
    check_report_options(metric, alpha, margin, compare, runs.columns)
    runs = runs.copy()
    info = metric_info(metric)
    settings = Settings(info, alpha, info.margin_points(margin), compare, baseline, design)
    if compare == "best" and settings.margin is None:
        raise ValueError(f"compare=best needs an equivalence margin (\"within ±m of the best\"); {metric} has no "
                         "default: declare one with --margin M or report.margin=M.")
    by = list(by) if by else [c for c in default_by(runs, identifying) if c not in not_factors]
    compared = split_baseline(baseline)[0]
    if compared not in runs:
        raise ValueError(f"--baseline {baseline}: unknown column '{compared}'. Give a variant name, or COLUMN=VALUE "
                         f"with a column of runs.csv (e.g. finetune.bn=train, bn.eval_stats=running).")
    if compared != "variant" and compared not in by:  # the compared factor must be a grouping column
        by.insert(len(ALWAYS) if set(ALWAYS) <= set(by) else len(by), compared)
    missing = [c for c in by if c not in runs]
    if missing:
        raise ValueError(f"Unknown --by column(s) {', '.join(missing)}. Columns: {', '.join(identifying)}.")
    runs["mean_epoch_time_s"] = runs["train_time_s"] / runs["epochs_done"].where(runs["epochs_done"] > 0)
    runs["target"] = pd.Series(target if target is not None else runs.get("dataset.target_acc", math.nan),
                               index=runs.index, dtype=float).values
    ttt = time_to_target(results, runs.set_index("run_key")["target"]) if not results.empty else None
    if ttt is not None and len(ttt):
        runs = runs.merge(ttt.drop(columns="target"), on="run_key", how="left")
    runs["train_loss_last_drop"] = runs["run_key"].map(last_loss_drop(results)).astype(float)
    keys = [as_labels(runs, [c])[c] for c in by]
    _check_one_run_per_seed(runs, keys, by, identifying)
    rows = []
    for values, g in runs.groupby(keys, sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        rows.append({**dict(zip(by, values)), **_group_row(g, metric)})
    summary = pd.DataFrame(rows)
    comparisons, comparison_notes = compare_groups(summary, by, settings, correctness)
    attach_baseline(summary, comparisons, settings)
    for label, index in families(summary, by, compared):  # every group, the baseline's row included
        summary.loc[index, "family"] = label
    summary["rank"], summary["rank_decided"] = verdict_rank(summary, comparisons)
    notes = [_numerics_note(runs), _method_note(settings)] + comparison_notes + _notes(summary, metric)
    notes += under_trained_note(summary, by)
    notes += target_note(summary, runs, keys[by.index(compared)] == split_baseline(baseline)[1] if compared in by
                         else pd.Series(False, index=runs.index), given=target is not None)
    if compare == "best" and not comparisons.empty:
        notes[2:2] = race_notes(summary, comparisons, settings)
    summary = summary.drop(columns=["_values", "_runs", "_status", "_resolution", "_n_pruned"])
    comparisons = comparisons.drop(columns=["_i", "_j"], errors="ignore")
    return Report(summary, by, metric, baseline, alpha, notes, comparisons=comparisons, settings=settings)


def _numerics_note(runs: pd.DataFrame) -> str:
    """Which precision the table's runs trained in (records from before these options existed were FP32)."""
    precision = runs.get("train.precision", pd.Series("fp32", index=runs.index)).fillna("fp32").astype(str)
    tf32 = runs.get("train.tf32", pd.Series(False, index=runs.index)).fillna(False).astype(bool)
    kinds = sorted(set(precision + tf32.map({True: " + TF32", False: ""})))
    mixed = " (mixed: compare within one precision; see the train.precision column)" if len(kinds) > 1 else ""
    return f"Numerics: {', '.join(kinds)}{mixed}."


def _method_note(settings: Settings) -> str:
    how = {"anytime": "an anytime-valid confidence interval (paired t, normal mixture; valid however seeds were "
                      "added)",
           "fixed": f"the paired t interval of the plan's fixed design ({settings.design.looks[0]} seeds)"
           if settings.design.looks else "",
           "sequential": f"a repeated confidence interval of the plan's group-sequential design (looks at "
                         f"{', '.join(map(str, settings.design.looks))} seeds, {settings.design.spending} spending)"}
    return (f"Verdicts: each comparison's difference has {how[settings.design.kind]} at level 1 − α/k for its family "
            f"of k (Holm's step levels where no margin is declared); better/worse when it "
            f"excludes 0, equivalent when it lies within the {settings.margin_text()}, else undecided with the smallest "
            f"difference a fixed design of this many seeds detects (power 0.8) and the seeds needed. Family-wise error "
            f"≤ α={settings.alpha:g} for all verdicts together (docs/statistics.md).")


def _notes(summary: pd.DataFrame, metric: str) -> List[str]:
    notes = []
    for _, r in summary.iterrows():
        label = " / ".join(str(r[c]) for c in ALWAYS if c in r)
        if r["n_diverged"]:
            notes.append(f"{label}: {r['n_diverged']} diverged run(s) counted at their last evaluated {metric} (an "
                         f"unstable variant is not judged on its survivors alone).")
        if r["n_failed"]:
            notes.append(f"{label}: {r['n_failed']} failed run(s) have no outcome and are left out (see runs.csv "
                         f"`error`).")
        if r["_n_pruned"]:
            notes.append(f"{label}: {r['_n_pruned']} pruned run(s) — tuning trials their study's pruner stopped "
                         "early — have no final outcome and are left out (runs.csv `status`; the tuning's "
                         "candidates.csv shows where each stood).")
        if r["n_seeds"] == 1:
            notes.append(f"{label}: one seed only, so no confidence interval and no verdict.")
    return notes
