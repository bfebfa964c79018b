"""Report outputs: summary.csv and comparisons.csv (tidy), summary.md (GitHub tables), summary.tex (booktabs),
and the console's rich table; every table states its method, margin and families."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable, Dict, List

import pandas as pd
from rich.table import Table

from ..atomic import atomic_write_text
from .comparisons import split_baseline
from .metrics import in_points, metric_info
from .referee import no_target_reached
from .summary import Report

VERDICT_MARK = {"better": ">", "worse": "<", "equivalent": "≈", "undecided": "?"}


def _num(x: float, digits: int = 2) -> str:
    return "—" if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.{digits}f}"


def _scale(metric: str) -> float:
    return 100.0 if "acc" in metric else 1.0  # accuracies are shown in percentage points


def _diff_scale(row: pd.Series, metric: str) -> float:
    """The factor that shows a row's differences in points: 1 for a row already in points (its `unit` column, as
    Report.comparisons has once make_report returns it: metrics.in_points), else the metric's display scale."""
    return 1.0 if "unit" in row.index else _scale(metric)


def mean_pm(row: pd.Series, metric: str) -> str:
    """'mean ± half-width of the 95% CI' (accuracies in %); just the mean when there is no CI."""
    k = _scale(metric)
    mean, lo, hi = row.get(f"{metric}_mean"), row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if mean is None or not math.isfinite(mean):
        return "—"
    if lo is None or not math.isfinite(lo):
        return _num(k * mean)
    return f"{_num(k * mean)} ± {_num(k * max(hi - mean, mean - lo))}"  # clipped at 0/100 %: the wider side


def _signed(x: float) -> str:
    return "−∞" if x == -math.inf else "+∞" if x == math.inf else f"{x:+.2f}"


def diff_ci(row: pd.Series, metric: str) -> str:
    """'+4.27 [+1.02, +7.52]' (the comparison's anytime-valid interval; unbounded while too few seeds)."""
    k = _diff_scale(row, metric)
    if not isinstance(row.get("diff"), float) or not math.isfinite(row["diff"]):
        return ""
    return f"{k * row['diff']:+.2f} [{_signed(k * row['ci_low'])}, {_signed(k * row['ci_high'])}]"


def _p(x: float) -> str:
    return "" if not isinstance(x, float) or not math.isfinite(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def _seeds(x: float) -> str:
    return "—" if not math.isfinite(x) else ("> 2000" if x == math.inf else f"{x:.0f}")


def verdict_text(row: pd.Series, metric: str) -> str:
    """The verdict, and for an undecided one what deciding would take."""
    v = row.get("verdict") or ""
    if v != "undecided":
        return v
    k = _diff_scale(row, metric)
    mde = row.get("mde")
    extra = f"MDE {k * mde:.2f}" if isinstance(mde, float) and math.isfinite(mde) else ""
    need = row.get("seeds_needed")
    if isinstance(need, float) and not math.isnan(need):
        extra += ("; " if extra else "") + f"~{_seeds(need)} seeds"
    return f"undecided ({extra})" if extra else v


def p_improve(row: pd.Series) -> str:
    p = row.get("p_improve")
    if not isinstance(p, float) or not math.isfinite(p):
        return ""
    lo, hi = row.get("p_improve_ci_low"), row.get("p_improve_ci_high")
    return f"{p:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if isinstance(lo, float) and math.isfinite(lo) else "")


def natural_key(col: pd.Series) -> pd.Series:
    """Sort key: numbers as numbers (batch 2, 4, …, 256 rather than 128, 16, 2, …), a missing value ('—') after
    them, anything else as text."""
    num = pd.to_numeric(col, errors="coerce")
    missing = col.isna() | (col.astype(str) == "—")
    return num if num[~missing].notna().all() and (~missing).any() else col.astype(str)


def sorted_summary(report: Report) -> pd.DataFrame:
    """The summary in context order (numeric factors ascending), then by rank and mean within each context."""
    s = report.summary.assign(_neg=-report.summary[f"{report.metric}_mean"] * (1 if report.settings is None or
                                                                               report.settings.metric.higher_is_better
                                                                               else -1))
    return s.sort_values([c for c in report.by if c != report.compared] + ["rank", "_neg"], kind="stable",
                         key=natural_key).drop(columns="_neg")


def header(report: Report) -> str:
    """The one line every table starts with: metric, CI, comparisons, margin, error rate."""
    unit = " (%)" if "acc" in report.metric else ""
    what = f"Δ vs {report.baseline}" if report.compare == "baseline" else "all pairs"
    margin = report.settings.margin_text() if report.settings else ""
    return (f"{report.metric}{unit} by {', '.join(report.by)}: mean ± 95% CI over seeds; {what} with anytime-valid "
            f"CIs at 1 − α/k per family; {margin}; α={report.alpha:g}")


def selected(frame: pd.DataFrame) -> List[str]:
    """The selected.<key> columns `sweep --tune` adds (none for an untuned sweep)."""
    return [c for c in frame.columns if str(c).startswith("selected.")]


def display_frame(report: Report) -> pd.DataFrame:
    """The human-readable summary (strings), sorted by context then rank."""
    s = sorted_summary(report)
    m, unit = report.metric, (" (%)" if "acc" in report.metric else "")
    out: Dict[str, List[str]] = {c: s[c].astype(str).tolist() for c in report.by}
    for c in selected(s):  # sweep --tune: the values each group was trained at
        out[c] = s[c].astype(str).tolist()
    out["seeds"] = [f"{n}" + (f" ({d} diverged)" if d else "") + (f" (+{f} failed)" if f else "")
                    for n, d, f in zip(s["n_seeds"], s["n_diverged"], s["n_failed"])]
    out[f"{m}{unit} ± 95% CI"] = [mean_pm(r, m) for _, r in s.iterrows()]
    if m != "test_acc_at_best_val":
        out["test acc @ best val (%)"] = [mean_pm(r, "test_acc_at_best_val") for _, r in s.iterrows()]
    out["train loss"] = [_num(x, 4) for x in s["final_train_loss_mean"]]
    out["epoch s"] = [_num(x) for x in s["mean_epoch_time_s_mean"]]
    out["samples/s"] = ["—" if not math.isfinite(x) else f"{x:,.0f}" for x in s["mean_samples_per_s_mean"]]
    out["params"] = ["—" if not math.isfinite(x) else f"{x:,.0f}" for x in s["n_params_mean"]]
    out["peak MiB"] = [_num(x, 1) for x in s["peak_mem_mb_mean"]]
    if not no_target_reached(s):  # no run reached the target: the columns say nothing (the notes say why)
        out["target"] = [_num(x, 3) for x in s["target"]]
        out["reached"] = s["reached"].tolist()
        out["steps to target (median)"] = [_num(x, 0) for x in s["steps_to_target_median"]]
        out["s to target (median)"] = [_num(x, 1) for x in s["seconds_to_target_median"]]
    out["rank"] = [_num(x, 0) for x in s["rank"]]
    if report.compare == "baseline":
        out[f"Δ vs {report.baseline} [CI]"] = [diff_ci(r, m) for _, r in s.iterrows()]
        out["p (adj)"] = [_p(x) for x in s["p_adj"]]
        out["p TOST (adj)"] = [_p(x) for x in s["p_tost_adj"]]
        out["P(better)"] = [p_improve(r) for _, r in s.iterrows()]
        out["d_z"] = [_num(x) for x in s["effect_dz"]]
        compared, value = split_baseline(report.baseline)
        out["verdict"] = ["baseline" if str(r[compared]) == value and r["family"] else verdict_text(r, m)
                          for _, r in s.iterrows()]
    else:
        for col, name in (("n_better", "better than"), ("n_equivalent", "equivalent to"), ("n_worse", "worse than"),
                          ("n_undecided", "undecided with")):
            out[name] = [str(int(x)) for x in s[col]]
    return pd.DataFrame(out)


def comparisons_frame(report: Report) -> pd.DataFrame:
    """One row per comparison, as strings: what the pairs mode prints (and summary.md lists in both modes). Its one
    interval is the verdict's, the one to cite; the seeds + test images interval answers another question and is
    in another_test_set_frame."""
    c, m = report.comparisons, report.metric
    if c.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "family": c["family"], "A": c["a"].astype(str), "B": c["b"].astype(str), "seeds": c["n_pairs"].astype(str),
        "Δ A − B [CI]": [diff_ci(r, m) for _, r in c.iterrows()], "p (adj)": c["p_adj"].map(_p),
        "p TOST (adj)": c["p_tost_adj"].map(_p), "P(A better)": [p_improve(r) for _, r in c.iterrows()],
        "verdict (A vs B)": [verdict_text(r, m) for _, r in c.iterrows()]})


TEST_SET_TITLE = ("Another test set? How much of each difference would survive resampling the test images as well as "
                  "the seeds (bootstrap over both, Bouthillier et al. 2021; descriptive, no verdict — the interval to "
                  "cite is the verdict's, above), and how often the two variants' predictions differ (churn):")


def another_test_set_frame(report: Report) -> pd.DataFrame:
    """The comparisons whose runs recorded which test images they got right: churn and the seeds + test images
    interval of Δ (diff_ci_low_tests/diff_ci_high_tests), labelled as what they answer; empty when none did."""
    c = report.comparisons
    if c.empty or "diff_ci_low_tests" not in c or not c["diff_ci_low_tests"].notna().any():
        return pd.DataFrame()
    c = c[c["diff_ci_low_tests"].notna()]
    k = [_diff_scale(r, report.metric) for _, r in c.iterrows()]
    return pd.DataFrame({
        "family": c["family"], "A": c["a"].astype(str), "B": c["b"].astype(str),
        "churn (%)": c["churn"].map(lambda x: "" if not math.isfinite(x) else f"{100 * x:.1f}"),
        "Δ range over seeds + test images": [f"[{s * lo:+.2f}, {s * hi:+.2f}]" for s, lo, hi in
                                             zip(k, c["diff_ci_low_tests"], c["diff_ci_high_tests"])]})


def matrix(report: Report, family: str) -> pd.DataFrame:
    """Pairs mode: the verdicts of one family as a matrix, row vs column (> better, < worse, ≈ equivalent,
    ? undecided)."""
    c = report.comparisons[report.comparisons["family"] == family]
    names = list(dict.fromkeys([*c["a"].astype(str), *c["b"].astype(str)]))
    grid = pd.DataFrame("", index=names, columns=names)
    flip = {">": "<", "<": ">"}
    for _, r in c.iterrows():
        mark = VERDICT_MARK.get(r["verdict"], "")
        grid.at[str(r["a"]), str(r["b"])] = mark
        grid.at[str(r["b"]), str(r["a"])] = flip.get(mark, mark)
    for n in names:
        grid.at[n, n] = "·"
    return grid


def write_csv(report: Report, path: Path) -> None:
    atomic_write_text(path, report.summary.to_csv(index=False, float_format="%.10g"))
    points = in_points(report.comparisons, metric_info(report.metric))  # differences in display points, `unit` column
    atomic_write_text(path.with_name("comparisons.csv"), points.to_csv(index=False, float_format="%.10g"))


def write_markdown(report: Report, path: Path) -> None:
    parts = [header(report), "", display_frame(report).to_markdown(index=False, disable_numparse=True)]
    comps = comparisons_frame(report)
    if not comps.empty:
        parts += ["", "Comparisons (Δ in the metric's points; the verdict reads A against B):", "",
                  comps.to_markdown(index=False, disable_numparse=True)]
    tests = another_test_set_frame(report)
    if not tests.empty:
        parts += ["", TEST_SET_TITLE, "", tests.to_markdown(index=False, disable_numparse=True)]
    if report.compare == "pairs":
        for family in dict.fromkeys(report.comparisons["family"]):
            parts += ["", f"Verdicts of {family}, row vs column (> better, < worse, ≈ equivalent, ? undecided):", "",
                      matrix(report, family).to_markdown(disable_numparse=True)]
    notes = "".join(f"\n- {n}" for n in report.notes)
    atomic_write_text(path, "\n".join(parts) + "\n" + (f"\nNotes:{notes}\n" if notes else ""))


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
                 ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")):
        s = s.replace(a, b)
    return s


def _tex_number(text: str) -> str:
    """Signs typeset as math: '-0.52' → '$-$0.52' (a minus, not a hyphen), '−∞'/'+∞' → '$-\\infty$'/'$+\\infty$'."""
    text = text.replace("−∞", r"$-\infty$").replace("+∞", r"$+\infty$").replace("∞", r"$\infty$")
    return re.sub(r"(?<![\w$])[-−](?=\d)", r"$-$", text)


def write_latex(report: Report, path: Path) -> None:
    """A booktabs tabular, mean ± CI half-width; in bold the groups no other group is decided better than by the
    report's own verdicts (rank 1), and only in families where some comparison is decided. Negative numbers get a
    math minus; a numeric column with no value in any row (steps to target when no target is set) is left out."""
    s = sorted_summary(report)
    m = report.metric
    labels = report.by + selected(s)

    def pm(r: pd.Series, metric: str) -> str:
        return _tex_number(_tex_escape(mean_pm(r, metric))).replace("±", r"$\pm$")

    def best(r: pd.Series) -> str:
        text = pm(r, m)
        return rf"\textbf{{{text}}}" if r["rank_decided"] and r["rank"] == 1 and r["n_seeds"] >= 2 else text

    # (header, cell of a row, numeric: dropped when empty in every row); labels left-aligned, the verdict too
    columns = [(_tex_escape(c), (lambda r, c=c: _tex_escape(str(r[c]))), False) for c in labels]
    columns += [("$n$", lambda r: str(r["n_seeds"]), False), (_tex_escape(m.replace("_", " ")), best, True),
                ("test acc @ best val", lambda r: pm(r, "test_acc_at_best_val"), True),
                ("train loss", lambda r: _tex_number(_num(r["final_train_loss_mean"], 4)), True),
                ("steps to target", lambda r: _num(r["steps_to_target_median"], 0), True)]
    if report.compare == "baseline":
        columns += [(_tex_escape(f"Δ vs {report.baseline}").replace("Δ", r"$\Delta$"),
                     lambda r: _tex_number(_tex_escape(diff_ci(r, m))), True),
                    (r"$p_\mathrm{adj}$", lambda r: _p(r["p_adj"]), True),
                    ("verdict", lambda r: _tex_escape(r["verdict"] or ""), False)]
    cells = [[cell(r) for _, r in s.iterrows()] for _, cell, _ in columns]
    keep = [i for i, (_, _, numeric) in enumerate(columns) if not numeric or any(c not in ("", "—") for c in cells[i])]
    body = [" & ".join(cells[i][row] for i in keep) + r" \\" for row in range(len(s))]
    spec = "".join("l" if i < len(labels) or columns[i][0] == "verdict" else "r" for i in keep)
    lines = [f"% bnablate report: {_tex_escape(header(report))}",
             r"% accuracies in %, mean $\pm$ half-width of the 95% Student-t CI over seeds"
             + ("; steps to target: median" if any(columns[i][0] == "steps to target" for i in keep) else ""),
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(columns[i][0] for i in keep) + r" \\",
             r"\midrule", *body, r"\bottomrule", r"\end{tabular}", ""]
    atomic_write_text(path, "\n".join(lines))


WRITERS: Dict[str, Callable[[Report, Path], None]] = {"csv": write_csv, "md": write_markdown, "tex": write_latex}
FILES = {"csv": "summary.csv", "md": "summary.md", "tex": "summary.tex"}


def rich_table(report: Report) -> Table:
    d = display_frame(report)
    mean_col = next(c for c in d.columns if c.endswith("± 95% CI"))
    first = list(report.by) + selected(d)
    if report.compare == "baseline":
        keep = first + ["seeds", mean_col, f"Δ vs {report.baseline} [CI]", "p (adj)", "p TOST (adj)",
                                  "reached", "verdict"]
    else:
        keep = first + ["seeds", mean_col, "rank", "better than", "equivalent to", "worse than",
                                  "undecided with"]
    keep = [c for c in keep if c in d.columns]  # "reached" is left out when no run reached the target
    t = Table(title=header(report), title_justify="left")
    for c in keep:
        name = "mean ± CI" if c.endswith("± 95% CI") else c  # the title names the metric and the CI level
        t.add_column(name, justify="left" if c in report.by or c == "verdict" else "right", no_wrap=c != "verdict")
    for _, r in d[keep].iterrows():
        t.add_row(*[str(v) for v in r])
    return t


def rich_comparisons(report: Report) -> Table:
    """Pairs mode's console table: one row per pair."""
    d = comparisons_frame(report)
    t = Table(title="all pairs (the verdict reads A against B)", title_justify="left")
    for c in d.columns:
        t.add_column(c, justify="left" if c in ("family", "A", "B", "verdict (A vs B)") else "right")
    for _, r in d.iterrows():
        t.add_row(*[str(v) for v in r])
    return t
