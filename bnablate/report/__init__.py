"""`bnablate report`: statistics across seeds, baseline comparisons, paper tables and figures from run records."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import pandas as pd

from ..results import load_records
from ..results.tables import build_tables, run_columns
from . import plots
from .render import FILES, WRITERS, rich_table
from .summary import Report, build_report

FORMATS = ("csv", "md", "tex", "png")  # png = the figures, written as PNG and PDF


def collect(dirs: Iterable[Path]) -> tuple[pd.DataFrame, pd.DataFrame, List[str]]:
    """Records from several run folders merged (a run key seen twice counts once: the latest finished record)."""
    by_key = {}
    for d in dirs:
        for rec in load_records(Path(d)):
            old = by_key.get(rec["run_key"])
            if old is None or (rec.get("finished_at") or "") > (old.get("finished_at") or ""):
                by_key[rec["run_key"]] = rec
    records = list(by_key.values())
    results, runs = build_tables(records)
    identifying = list(run_columns(records[0])) if records else []
    return results, runs, identifying


def make_report(dirs: Sequence[Path], out: Optional[Path] = None, metric: str = "final_test_acc",
                baseline: str = "no_bn", target: Optional[float] = None, by: Optional[Sequence[str]] = None,
                formats: Sequence[str] = FORMATS, alpha: float = 0.05) -> tuple[Report, List[Path]]:
    """Build the report from the records in `dirs` and write it under `out` (default: first dir / report)."""
    results, runs, identifying = collect(dirs)
    report = build_report(results, runs, identifying, metric=metric, baseline=baseline, target=target, by=by,
                          alpha=alpha)
    out = Path(out) if out is not None else Path(dirs[0]) / "report"
    written: List[Path] = []
    if report.summary.empty:
        return report, written
    out.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        if fmt in WRITERS:
            WRITERS[fmt](report, out / FILES[fmt])
            written.append(out / FILES[fmt])
        elif fmt == "png":
            written += plots.learning_curves(results, report, out)
            written += plots.final_metric(report, out)
            written += plots.time_to_target(report, out)
    return report, written


__all__ = ["FORMATS", "Report", "build_report", "collect", "make_report", "rich_table"]
