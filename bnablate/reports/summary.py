"""The report's summary: runs grouped by the factors that vary, per-group statistics, time-to-target, and
comparisons against a baseline variant with Holm-corrected p-values, ranks and plain-English verdicts."""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from ..config import KEYS
from ..registry import unknown_name_message
from .stats import compare, holm, mean_ci

# Columns that identify a run but are not factors to group by: the record's own columns, and every config key that
# is not a result (execution options, locations, labels; their roles are declared in bnablate/config.py) or the seed.
NOT_FACTORS = frozenset({"run_key", "status", "sweep", "error", *KEYS.not_factors})
# Variant axes are summarized by the `variant` label (a preset name or a label built from the axes) — except the
# dropout rate, which a preset's name leaves out (variant_label), so a sweep over it keeps dropout_p as a factor.
AXIS_COLUMNS = {"norm", "placement", "dropout", "bias", "activation", "groups", "variant.residual",
                "variant.residual_init"}
ALWAYS = ["dataset", "model", "variant"]
# Metrics where smaller is better; everything else (accuracies) is better when larger.
LOWER_IS_BETTER = ("loss", "time", "steps", "epochs_to", "seconds", "mem")
CI_METRICS = ("final_test_acc", "test_acc_at_best_val", "best_val_acc")
MEAN_METRICS = ("final_train_loss", "mean_epoch_time_s", "mean_samples_per_s", "n_params", "peak_mem_mb")


def split_baseline(baseline: str) -> tuple[str, str]:
    """(compared column, baseline value): 'no_bn' → ('variant', 'no_bn'); 'finetune.bn=train' → ('finetune.bn',
    'train'), for comparing the values of any factor (fine-tuning modes, eval statistics) within each variant."""
    column, sep, value = baseline.partition("=")
    return (column.strip(), value.strip()) if sep else ("variant", baseline)


def lower_is_better(metric: str) -> bool:
    return any(tag in metric for tag in LOWER_IS_BETTER)


def as_labels(frame: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """The columns as strings, missing values as '—' (a model-specific key is missing in other models' rows)."""
    part = frame[list(cols)].astype(object)
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
    """Per run: optimizer steps, epochs and training seconds until validation accuracy first reaches its target
    (NaN when never reached). `targets` maps run_key → target accuracy."""
    rows = []
    for key, g in results.sort_values("epoch").groupby("run_key", sort=False):
        target = targets.get(key, math.nan)
        seconds = g["epoch_time_s"].cumsum()
        hit = g.index[g["val_acc"] >= target] if math.isfinite(target) else []
        if len(hit):
            first = hit[0]
            rows.append({"run_key": key, "target": target, "reached": True, "steps_to_target": g.at[first, "steps"],
                         "epochs_to_target": g.at[first, "epoch"], "seconds_to_target": seconds.at[first]})
        else:
            rows.append({"run_key": key, "target": target, "reached": False, "steps_to_target": math.nan,
                         "epochs_to_target": math.nan, "seconds_to_target": math.nan})
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

    @property
    def compared(self) -> str:
        """The column whose values are compared with the baseline's (variant, or COLUMN of --baseline COLUMN=VALUE);
        the other grouping columns form the contexts."""
        return split_baseline(self.baseline)[0]


def _group_row(g: pd.DataFrame, metric: str) -> Dict[str, object]:
    ok = g[g["status"] == "ok"]
    row: Dict[str, object] = {"n_seeds": int(ok["seed"].nunique()), "n_runs": len(g),
                              "n_diverged": int((g["status"] == "diverged").sum()),
                              "n_failed": int((g["status"] == "failed").sum())}
    for m in dict.fromkeys((metric,) + CI_METRICS):
        est = mean_ci(ok[m].tolist()) if m in ok else mean_ci([])
        row.update({f"{m}_mean": est.mean, f"{m}_std": est.std, f"{m}_ci_low": est.ci_low, f"{m}_ci_high": est.ci_high})
    for m in MEAN_METRICS:
        row[f"{m}_mean"] = float(pd.to_numeric(ok[m], errors="coerce").mean()) if m in ok and len(ok) else math.nan
    reached = ok["reached"].fillna(False).astype(bool) if "reached" in ok else pd.Series(dtype=bool)
    row["target"] = float(g["target"].iloc[0]) if "target" in g and len(g) else math.nan
    row["reached"] = f"{int(reached.sum())}/{len(ok)}"
    for m in ("steps_to_target", "epochs_to_target", "seconds_to_target"):
        row[f"{m}_mean"] = float(ok.loc[reached, m].mean()) if reached.any() else math.nan
    return row


def build_report(results: pd.DataFrame, runs: pd.DataFrame, identifying: Sequence[str], metric: str = "final_test_acc",
                 baseline: str = "no_bn", target: Optional[float] = None, by: Optional[Sequence[str]] = None,
                 alpha: float = 0.05) -> Report:
    """Summarize runs (runs.csv rows, results.csv rows) into one row per group with CIs and baseline comparisons."""
    if runs.empty:
        return Report(pd.DataFrame(), list(by or ALWAYS), metric, baseline, alpha, ["no runs found"])
    runs = runs.copy()
    if metric not in runs:
        metrics = [c for c in runs.columns if c.startswith(("final_", "best_", "test_acc"))]
        raise ValueError(unknown_name_message("metric", metric, metrics))
    by = list(by) if by else default_by(runs, identifying)
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
    targets = pd.Series(target if target is not None else runs.get("dataset.target_acc", math.nan),
                        index=runs.index, dtype=float)
    runs["target"] = targets.values
    ttt = time_to_target(results, runs.set_index("run_key")["target"]) if not results.empty else None
    if ttt is not None and len(ttt):
        runs = runs.merge(ttt.drop(columns="target"), on="run_key", how="left")
    keys = [as_labels(runs, [c])[c] for c in by]
    groups = runs.groupby(keys, sort=False, dropna=False)
    rows = []
    for values, g in groups:
        values = values if isinstance(values, tuple) else (values,)
        rows.append({**dict(zip(by, values)), **_group_row(g, metric), "_seeds": _by_seed(g, metric)})
    summary = pd.DataFrame(rows)
    notes = [_numerics_note(runs)] + _notes(summary)
    _rank_and_compare(summary, by, metric, baseline, alpha, notes)
    summary = summary.drop(columns="_seeds")
    return Report(summary, by, metric, baseline, alpha, notes)


def _by_seed(g: pd.DataFrame, metric: str) -> Dict[int, float]:
    ok = g[g["status"] == "ok"]
    return {int(s): float(v) for s, v in zip(ok["seed"], ok[metric]) if v is not None and not pd.isna(v)}


def _numerics_note(runs: pd.DataFrame) -> str:
    """Which precision the table's runs trained in (records from before these options existed were FP32)."""
    precision = runs.get("train.precision", pd.Series("fp32", index=runs.index)).fillna("fp32").astype(str)
    tf32 = runs.get("train.tf32", pd.Series(False, index=runs.index)).fillna(False).astype(bool)
    kinds = sorted(set(precision + tf32.map({True: " + TF32", False: ""})))
    mixed = " (mixed: compare within one precision; see the train.precision column)" if len(kinds) > 1 else ""
    return f"Numerics: {', '.join(kinds)}{mixed}."


def _notes(summary: pd.DataFrame) -> List[str]:
    notes = []
    for _, r in summary.iterrows():
        label = " / ".join(str(r[c]) for c in ALWAYS if c in r)
        if r["n_diverged"]:
            notes.append(f"{label}: {r['n_diverged']} diverged run(s) excluded from the means.")
        if r["n_failed"]:
            notes.append(f"{label}: {r['n_failed']} failed run(s) excluded (see runs.csv `error`).")
        if r["n_seeds"] == 1:
            notes.append(f"{label}: one seed only, so no confidence interval or test.")
    return notes


def _rank_and_compare(summary: pd.DataFrame, by: List[str], metric: str, baseline: str, alpha: float,
                      notes: List[str]) -> None:
    """Within each context (the group columns other than the compared one, `variant` unless the baseline is
    COLUMN=VALUE), rank by the metric and compare every group with the baseline's group; Holm-correct all
    comparisons of the report together."""
    compared, value = split_baseline(baseline)
    context_cols = [c for c in by if c != compared]
    contexts = summary.groupby(context_cols, sort=False).groups if context_cols else {(): summary.index}
    ascending = lower_is_better(metric)
    summary["rank"] = np.nan
    for col in ("baseline", "test", "verdict"):
        summary[col] = ""
    for col in ("diff", "diff_ci_low", "diff_ci_high", "p", "p_holm", "effect_size"):
        summary[col] = np.nan
    is_base = as_labels(summary, [compared])[compared] == value
    for ctx, index in contexts.items():
        part = summary.loc[index]
        summary.loc[index, "rank"] = part[f"{metric}_mean"].rank(ascending=ascending, method="min")
        base = part[is_base.loc[index]]
        if base.empty:
            notes.append(f"{ctx if ctx != () else 'all runs'}: no '{baseline}' runs, so no comparisons "
                         f"(choose --baseline from: {', '.join(sorted(as_labels(part, [compared])[compared].unique()))}).")
            continue
        base_seeds = base.iloc[0]["_seeds"]
        for i in index:
            if is_base.at[i]:
                summary.at[i, "verdict"] = "baseline"
                continue
            c = compare(summary.at[i, "_seeds"], base_seeds)
            summary.loc[i, ["baseline", "test"]] = [baseline, c.test]
            summary.loc[i, ["diff", "diff_ci_low", "diff_ci_high", "p", "effect_size"]] = [
                c.diff, c.ci_low, c.ci_high, c.p, c.effect_size]
    summary["p_holm"] = holm(summary["p"].tolist())
    for i in summary.index:
        if summary.at[i, "verdict"] != "baseline":
            summary.at[i, "verdict"] = verdict(summary.loc[i], metric, baseline, alpha)


def verdict(row: pd.Series, metric: str, baseline: str, alpha: float) -> str:
    """'better' / 'worse' than the baseline when the Holm-corrected p is below alpha, else no detectable difference."""
    if not row["baseline"]:
        return ""
    if not math.isfinite(row["p_holm"]):
        return "too few seeds to test"
    if row["p_holm"] >= alpha:
        return f"no detectable difference at α={alpha:g}"
    better = (row["diff"] < 0) if lower_is_better(metric) else (row["diff"] > 0)
    return f"{'better' if better else 'worse'} than {row['baseline']} (Holm p={row['p_holm']:.2g})"
