"""Report outputs: summary.csv (tidy), summary.md (GitHub table), summary.tex (booktabs, best in bold), rich table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, List

import pandas as pd
from rich.table import Table

from ..atomic import atomic_write_text
from .summary import Report, lower_is_better


def _num(x: float, digits: int = 2) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _scale(metric: str) -> float:
    return 100.0 if "acc" in metric else 1.0  # accuracies are shown in percentage points


def mean_pm(row: pd.Series, metric: str) -> str:
    """'mean ± half-width of the 95% CI' (accuracies in %); just the mean when there is no CI."""
    k = _scale(metric)
    mean, lo, hi = row.get(f"{metric}_mean"), row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if mean is None or not math.isfinite(mean):
        return "—"
    if lo is None or not math.isfinite(lo):
        return _num(k * mean)
    return f"{_num(k * mean)} ± {_num(k * (hi - lo) / 2)}"


def diff_ci(row: pd.Series, metric: str) -> str:
    k = _scale(metric)
    if not math.isfinite(row["diff"]):
        return ""
    ci = f" [{k * row['diff_ci_low']:+.2f}, {k * row['diff_ci_high']:+.2f}]" if math.isfinite(row["diff_ci_low"]) else ""
    return f"{k * row['diff']:+.2f}{ci}"


def _p(x: float) -> str:
    return "" if not math.isfinite(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def natural_key(col: pd.Series) -> pd.Series:
    """Sort key: numbers as numbers (batch 2, 4, …, 256 rather than 128, 16, 2, …), anything else as text."""
    num = pd.to_numeric(col, errors="coerce")
    return num if num.notna().all() else col.astype(str)


def sorted_summary(report: Report) -> pd.DataFrame:
    """The summary in context order (numeric factors ascending), then by rank within each context."""
    return report.summary.sort_values([c for c in report.by if c != report.compared] + ["rank"], kind="stable",
                                      key=natural_key)


def display_frame(report: Report) -> pd.DataFrame:
    """The human-readable summary (strings), sorted by context then rank."""
    s = sorted_summary(report)
    m, unit = report.metric, (" (%)" if "acc" in report.metric else "")
    out: Dict[str, List[str]] = {c: s[c].astype(str).tolist() for c in report.by}
    out["seeds"] = [f"{n}" + (f" (+{d} diverged)" if d else "") + (f" (+{f} failed)" if f else "")
                    for n, d, f in zip(s["n_seeds"], s["n_diverged"], s["n_failed"])]
    out[f"{m}{unit} ± 95% CI"] = [mean_pm(r, m) for _, r in s.iterrows()]
    if m != "test_acc_at_best_val":
        out["test acc @ best val (%)"] = [mean_pm(r, "test_acc_at_best_val") for _, r in s.iterrows()]
    out["train loss"] = [_num(x, 4) for x in s["final_train_loss_mean"]]
    out["epoch s"] = [_num(x) for x in s["mean_epoch_time_s_mean"]]
    out["samples/s"] = ["—" if not math.isfinite(x) else f"{x:,.0f}" for x in s["mean_samples_per_s_mean"]]
    out["params"] = ["—" if not math.isfinite(x) else f"{x:,.0f}" for x in s["n_params_mean"]]
    out["peak MiB"] = [_num(x, 1) for x in s["peak_mem_mb_mean"]]
    out["target"] = [_num(x, 3) for x in s["target"]]
    out["reached"] = s["reached"].tolist()
    out["steps to target"] = [_num(x, 0) for x in s["steps_to_target_mean"]]
    out["s to target"] = [_num(x, 1) for x in s["seconds_to_target_mean"]]
    out["rank"] = [_num(x, 0) for x in s["rank"]]
    out[f"Δ vs {report.baseline} [95% CI]"] = [diff_ci(r, m) for _, r in s.iterrows()]
    out["test"] = s["test"].tolist()
    out["p (Holm)"] = [_p(x) for x in s["p_holm"]]
    out["effect size"] = [_num(x) for x in s["effect_size"]]
    out["verdict"] = s["verdict"].tolist()
    return pd.DataFrame(out)


def write_csv(report: Report, path: Path) -> None:
    atomic_write_text(path, report.summary.to_csv(index=False, float_format="%.10g"))


def write_markdown(report: Report, path: Path) -> None:
    text = display_frame(report).to_markdown(index=False, disable_numparse=True)
    notes = "".join(f"\n- {n}" for n in report.notes)
    atomic_write_text(path, text + "\n" + (f"\nNotes:{notes}\n" if notes else ""))


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
                 ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")):
        s = s.replace(a, b)
    return s


def write_latex(report: Report, path: Path) -> None:
    """A booktabs tabular, mean ± CI half-width, the best value of each numeric column in bold within each context
    (the group columns other than the compared one, normally variant)."""
    s = sorted_summary(report)
    ctx_cols = [c for c in report.by if c != report.compared]
    ctx = s[ctx_cols].astype(str).agg("|".join, axis=1) if ctx_cols else pd.Series("", index=s.index)
    columns: Dict[str, tuple] = {  # header → (value column for "best", formatter, lower is better)
        f"{report.metric.replace('_', ' ')}": (f"{report.metric}_mean", lambda r: mean_pm(r, report.metric),
                                               lower_is_better(report.metric)),
        "test acc @ best val": ("test_acc_at_best_val_mean", lambda r: mean_pm(r, "test_acc_at_best_val"), False),
        "train loss": ("final_train_loss_mean", lambda r: _num(r["final_train_loss_mean"], 4), True),
        "steps to target": ("steps_to_target_mean", lambda r: _num(r["steps_to_target_mean"], 0), True),
    }
    body = []
    for i, r in s.iterrows():
        cells = [_tex_escape(str(r[c])) for c in report.by] + [str(r["n_seeds"])]
        for col, fmt, low in columns.values():
            same = s[ctx == ctx[i]][col]
            best = same.min() if low else same.max()
            text = _tex_escape(fmt(r)).replace("±", r"$\pm$")
            bold = math.isfinite(r[col]) and r[col] == best and same.notna().sum() > 1
            cells.append(rf"\textbf{{{text}}}" if bold else text)
        cells += [_tex_escape(diff_ci(r, report.metric)), _p(r["p_holm"])]
        body.append(" & ".join(cells) + r" \\")
    header = [_tex_escape(c) for c in report.by] + ["$n$"] + [_tex_escape(h) for h in columns] + \
        [_tex_escape(f"Δ vs {report.baseline}").replace("Δ", r"$\Delta$"), r"$p_\mathrm{Holm}$"]
    spec = "l" * len(report.by) + "r" * (len(header) - len(report.by))
    lines = [r"% bnablate report: accuracies in %, mean $\pm$ half-width of the 95% Student-t CI over seeds",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule", *body,
             r"\bottomrule", r"\end{tabular}", ""]
    atomic_write_text(path, "\n".join(lines))


WRITERS: Dict[str, Callable[[Report, Path], None]] = {"csv": write_csv, "md": write_markdown, "tex": write_latex}
FILES = {"csv": "summary.csv", "md": "summary.md", "tex": "summary.tex"}


def rich_table(report: Report) -> Table:
    d = display_frame(report)
    keep = list(report.by) + ["seeds", d.columns[len(report.by) + 1], f"Δ vs {report.baseline} [95% CI]",
                              "p (Holm)", "reached", "verdict"]
    unit = " (%)" if "acc" in report.metric else ""
    t = Table(title=f"{report.metric}{unit} by {', '.join(report.by)}: mean ± 95% CI half-width over seeds; "
                    f"baseline {report.baseline}, Holm-corrected p",
              title_justify="left")
    for c in keep:
        header = "mean ± CI" if c.endswith("± 95% CI") else c  # the title names the metric and the CI level
        t.add_column(header, justify="left" if c in report.by or c == "verdict" else "right",
                     no_wrap=c not in ("verdict",))
    for _, r in d[keep].iterrows():
        t.add_row(*[str(v) for v in r])
    return t
