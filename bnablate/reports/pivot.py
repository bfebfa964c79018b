"""Report views for sweeps over one numeric factor (lr grid, batch sizes) and per-epoch curves as tables."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_write_text
from .render import _scale, mean_pm, natural_key
from ..stats import mean_ci
from .summary import Report


def pivot_frame(report: Report, column: str, trained_above: Optional[float] = None) -> pd.DataFrame:
    """One row per group of the other factors, one column per value of `column`: 'mean ± CI (diverged/failed)'.
    With `trained_above`, a last column gives the largest value of `column` whose mean metric is ≥ that threshold
    with no diverged run (e.g. the largest learning rate that trains)."""
    if column not in report.by:
        raise ValueError(f"--pivot {column}: not a factor of this report (factors: {', '.join(report.by)}; a column "
                         f"becomes a factor when its value varies between runs, or name it in --by).")
    s = report.summary.copy()
    s["_order"] = natural_key(s[column])
    values = list(dict.fromkeys(s.sort_values("_order", kind="stable")[column].astype(str)))
    rows_by = [c for c in report.by if c != column]
    m = report.metric
    rows = []
    for key, g in s.groupby(rows_by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(rows_by, key))
        trained = []
        for _, r in g.sort_values("_order", kind="stable").iterrows():
            broken = int(r["n_diverged"]) + int(r["n_failed"])
            row[str(r[column])] = mean_pm(r, m) + (f" ({broken} of {int(r['n_runs'])} diverged/failed)" if broken else "")
            if trained_above is not None and not broken and r[f"{m}_mean"] >= trained_above:
                trained.append(r[column])
        if trained_above is not None:
            row[f"largest {column} with mean ≥ {trained_above:g}"] = str(trained[-1]) if trained else "none"
        rows.append(row)
    frame = pd.DataFrame(rows)
    cells = [v for v in values if v in frame]
    frame[cells] = frame[cells].fillna("—")  # a group not run at that value (a grid that covers only some levels)
    return frame[rows_by + cells + [c for c in frame if c.startswith("largest ")]]


def pivot_figure(report: Report, column: str, out_dir: Path, stem: str) -> List[Path]:
    """The metric against `column` (log scale when numeric, positive and spanning ≥ 10×), one line per group."""
    s = report.summary.copy()
    m, k = report.metric, _scale(report.metric)
    x_all = pd.to_numeric(s[column], errors="coerce")
    # numeric when every value that is set is a number; a group with the factor unset (a GroupNorm run has no ghost
    # batch size) is drawn as a horizontal line with its CI band: it does not vary with the factor
    unset = s[column].isna() | s[column].astype(str).isin(["", "—", "None", "nan"])
    numeric = x_all[~unset].notna().all() and (~unset).any()
    rows_by = [c for c in report.by if c != column]
    from .plots import plt, save_figure  # plots selects the Agg backend (files only); loaded when drawing

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    labels = s[rows_by].astype(str).agg(" · ".join, axis=1) if rows_by else pd.Series("all", index=s.index)
    for label in dict.fromkeys(labels):
        if numeric and unset[labels == label].all():
            r = s[labels == label].iloc[0]
            line = ax.axhline(k * r[f"{m}_mean"], ls="--", lw=1.2, label=f"{label} (any {column})")
            if np.isfinite(r[f"{m}_ci_low"]):
                ax.axhspan(k * r[f"{m}_ci_low"], k * r[f"{m}_ci_high"], color=line.get_color(), alpha=0.12)
            continue
        g = s[labels == label].assign(_x=x_all[labels == label]).sort_values("_x" if numeric else column)
        x = g["_x"].to_numpy(float) if numeric else np.arange(len(g))
        mean = k * g[f"{m}_mean"].to_numpy(float)
        lo, hi = k * g[f"{m}_ci_low"].to_numpy(float), k * g[f"{m}_ci_high"].to_numpy(float)
        err = np.where(np.isfinite(lo), np.vstack([mean - lo, hi - mean]), 0.0)
        ax.errorbar(x, mean, yerr=err, marker="o", ms=4, capsize=3, lw=1.4, label=label)
        if not numeric:
            ax.set_xticks(x, g[column].astype(str).tolist())
    if numeric and (x_all[~unset] > 0).all() and x_all.max() >= 10 * x_all.min():
        ax.set_xscale("log")
    ax.set_xlabel(column)
    ax.set_ylabel(m.replace("_", " ") + (" (%)" if k == 100 else "") + ", mean ± 95% CI")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_dir, stem)


def per_epoch_frame(results: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and 95% CI over seeds of each metric at each epoch, per group (ok runs only): tidy, one row per
    group × epoch, e.g. to compare training loss at epoch 5 with a tutorial's figure."""
    missing = [mt for mt in metrics if mt not in results]
    if missing:
        per_epoch = [c for c in results.columns if c.endswith(("_loss", "_acc"))]
        raise ValueError(f"Unknown --per-epoch metric(s) {', '.join(missing)}. Choose from: {', '.join(per_epoch)}.")
    ok = results[results["status"] == "ok"]
    rows = []
    for key, g in ok.groupby(list(by) + ["epoch"], sort=True, dropna=False):
        row = dict(zip(list(by) + ["epoch"], key))
        row["n_seeds"] = int(g["seed"].nunique())
        for mt in metrics:
            est = mean_ci(g[mt].tolist())
            row.update({f"{mt}_mean": est.mean, f"{mt}_ci_low": est.ci_low, f"{mt}_ci_high": est.ci_high})
        rows.append(row)
    return pd.DataFrame(rows)


def per_epoch_table(frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], with_ci: bool = True
                    ) -> pd.DataFrame:
    """per_epoch_frame as display strings: 'mean ± CI' cells (accuracies in %), or the means alone (the console)."""
    shown = frame[list(by) + ["epoch", "n_seeds"]].astype(str)
    for mt in metrics:
        if with_ci:
            shown[f"{mt} ± 95% CI" + (" (%)" if "acc" in mt else "")] = [mean_pm(r, mt) for _, r in frame.iterrows()]
        else:
            shown[mt] = [f"{100 * v:.2f}" if "acc" in mt else f"{v:.4f}" for v in frame[f"{mt}_mean"]]
    return shown


def per_epoch_markdown(frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> str:
    return per_epoch_table(frame, by, metrics).to_markdown(index=False, disable_numparse=True) + "\n"


def write_pivot(report: Report, column: str, out_dir: Path, trained_above: Optional[float]) -> tuple:
    """pivot_<column>.csv/.md and the figure; returns (frame, written paths)."""
    frame = pivot_frame(report, column, trained_above)
    stem = f"pivot_{column.replace('.', '_')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / f"{stem}.csv", frame.to_csv(index=False))
    title = f"{report.metric} by {column}: mean ± 95% CI half-width over seeds\n\n"
    atomic_write_text(out_dir / f"{stem}.md", title + frame.to_markdown(index=False, disable_numparse=True) + "\n")
    return frame, [out_dir / f"{stem}.csv", out_dir / f"{stem}.md", *pivot_figure(report, column, out_dir, stem)]


def write_per_epoch(results: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], out_dir: Path) -> tuple:
    frame = per_epoch_frame(results, by, metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "per_epoch.csv", frame.to_csv(index=False, float_format="%.10g"))
    atomic_write_text(out_dir / "per_epoch.md", per_epoch_markdown(frame, by, metrics))
    return frame, [out_dir / "per_epoch.csv", out_dir / "per_epoch.md"]
