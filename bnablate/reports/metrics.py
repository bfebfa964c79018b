"""What the report knows about a metric: direction, display scale, range, resolution, and the default margin."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

import pandas as pd

from ..registry import unknown_name_message
from ..stats.resolution import infer_resolution
from ..results.tables import SUMMARY_COLUMNS

# Metrics where smaller is better; everything else (accuracies) is better when larger.
LOWER_IS_BETTER = ("loss", "time", "steps", "epochs_to", "seconds", "mem")
# runs.csv columns a report can rank and test: the per-run numbers that are not counts, labels or bookkeeping.
METRICS = tuple(c for c in SUMMARY_COLUMNS if c not in (
    "n_params", "epochs_done", "error", "best_epoch", "steps", "pack_size", "device_used", "finished_at", "n_train",
    "n_val", "n_test", "data_fingerprint"))
# The equivalence margin for accuracies when none is declared, in percentage points (docs/statistics.md, 'Margin').
DEFAULT_ACC_MARGIN = 1.0
COMPARE_MODES = ("baseline", "pairs", "best")


def lower_is_better(metric: str) -> bool:
    return any(tag in metric for tag in LOWER_IS_BETTER)


def is_accuracy(metric: str) -> bool:
    return "acc" in metric


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    scale: float  # display factor: accuracies in percentage points
    unit: str  # " (%)" or ""
    bounds: Optional[Tuple[float, float]]  # the metric's range, (0, 1) for accuracies
    count_column: Optional[str]  # runs.csv column holding the image count whose reciprocal is the resolution

    def resolution(self, runs: pd.DataFrame) -> float:
        """The metric's step over these runs: 1/N for an accuracy over N images (the coarsest among the runs); 0 for
        continuous metrics; nan when the tables do not say N (folders read from tables written before n_test was a
        column): the report then infers it from its family's values (family_resolution)."""
        if self.count_column is None:
            return 0.0
        counts = pd.to_numeric(runs[self.count_column], errors="coerce").dropna() if self.count_column in runs \
            else pd.Series(dtype=float)
        return 1.0 / float(counts.min()) if len(counts) and counts.min() > 0 else math.nan

    def margin_points(self, declared: Optional[float]) -> Optional[float]:
        """The equivalence margin in display points (1.0 = 1 percentage point of accuracy): as declared, else
        DEFAULT_ACC_MARGIN for accuracies; other metrics test no equivalence unless one is declared."""
        if declared is None:
            return DEFAULT_ACC_MARGIN if is_accuracy(self.name) else None
        return float(declared)


# Columns of a comparison (comparisons.csv, Report.comparisons, decisions.csv) that are differences of the metric:
# what in_points shows on the tables' scale (the margin too: the comparisons carry it in the metric's units).
DIFFERENCE_COLUMNS = ("diff", "ci_low", "ci_high", "margin", "sd_diff", "mde", "diff_ci_low_tests",
                      "diff_ci_high_tests", "ci_low_anytime", "ci_high_anytime")


def unit_name(metric: Metric) -> str:
    """The `unit` column's value: 'points' (percentage points) for accuracies, '' for metrics shown as recorded."""
    return "points" if metric.scale == 100.0 else ""


def in_points(frame: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """The comparisons as a person reads them: every difference column times the metric's display scale (0.049 →
    4.9 points of accuracy) and a `unit` column saying so. A frame that already has the `unit` column is returned
    as is, so converting twice cannot scale twice."""
    if "unit" in frame.columns:
        return frame
    out = frame.copy()
    for col in DIFFERENCE_COLUMNS:
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce") * metric.scale
    out["unit"] = unit_name(metric)
    return out


def family_resolution(recorded: Iterable[float], unrecorded_values: Iterable[float]) -> float:
    """One family's floor: the coarsest step among its groups — the recorded 1/N, and for groups whose tables do not
    say N the grid inferred from all their values together (stats.resolution: never finer than the truth); nan
    when no grid fits those values, and the family then gets no verdicts (docs/statistics.md, 'Resolution')."""
    steps = [r for r in recorded if math.isfinite(r)]
    values = list(unrecorded_values)
    if values:
        steps.append(infer_resolution(values))
    return max(steps) if steps and not any(math.isnan(s) for s in steps) else (math.nan if steps else 0.0)


def metric_info(name: str) -> Metric:
    acc = is_accuracy(name)
    split = next((s for s in ("test", "val", "train") if s in name), None)
    return Metric(name, not lower_is_better(name), 100.0 if acc else 1.0, " (%)" if acc else "",
                  (0.0, 1.0) if acc else None, f"n_{split}" if acc and split else None)


def check_report_options(metric: str, alpha: float, margin: Optional[float], compare: str,
                         columns: Optional[Iterable[str]] = None) -> None:
    """Every report option checked before anything is computed (or trained: `sweep --until-decided` calls this in
    its plan); raises ValueError naming the fix."""
    known = [m for m in METRICS if columns is None or m in set(columns)]
    if metric not in known:
        raise ValueError(unknown_name_message("metric", metric, known))
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1) (the family-wise error rate of the verdicts), got {alpha}; "
                         "e.g. report.alpha=0.05 or --alpha 0.05.")
    if margin is not None and not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a positive number of metric points (the largest difference you would call "
                         f"no difference, declared before looking: 1.0 = 1 percentage point of accuracy), got "
                         f"{margin}; e.g. report.margin=0.5 or --margin 0.5.")
    if compare not in COMPARE_MODES:
        raise ValueError(unknown_name_message("compare mode", compare, COMPARE_MODES))
