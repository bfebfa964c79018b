"""The report's view of the gradient-norm probe (train.probe): a tidy probe.csv and the grad_norms figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List

import pandas as pd

from ..atomic import atomic_write_text
from .summary import Report, as_labels

KINDS = {"grad_norm": "gradient norm ‖∇W‖₂", "stream_rms": "residual stream RMS"}


def probe_rows(records: Iterable[Dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, probed step, layer or block): run_key, epoch, step, kind (grad_norm | stream_rms), layer,
    depth (its position in the model's order, from 0) and value. Empty when no run was probed."""
    rows = []
    for rec in records:
        for probe in rec.get("probe") or []:
            for kind in KINDS:
                for depth, (layer, value) in enumerate(probe[kind].items()):
                    rows.append({"run_key": rec["run_key"], "epoch": probe["epoch"], "step": probe["step"],
                                 "kind": kind, "layer": layer, "depth": depth, "value": value})
    return pd.DataFrame(rows, columns=["run_key", "epoch", "step", "kind", "layer", "depth", "value"])


def probe_table(records: Iterable[Dict[str, Any]], report: Report, runs: pd.DataFrame) -> pd.DataFrame:
    """probe_rows with the report's grouping columns (as labels) and the seed of each run."""
    rows = probe_rows(records)
    if rows.empty:
        return rows
    labels = as_labels(runs, report.by).assign(run_key=runs["run_key"], seed=runs["seed"])
    return labels.merge(rows, on="run_key")


def write_probe(records: Iterable[Dict[str, Any]], report: Report, runs: pd.DataFrame, out: Path,
                figures: bool) -> List[Path]:
    """probe.csv, and (figures) grad_norms.png/.pdf, when any run was probed; nothing otherwise."""
    table = probe_table(records, report, runs)
    if table.empty:
        return []
    path = out / "probe.csv"
    atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
    written = [path]
    if figures:
        from .plots import probe_figure  # matplotlib loads only when figures are drawn

        written += probe_figure(table, report, out)
    return written


__all__ = ["KINDS", "probe_rows", "probe_table", "write_probe"]
