"""Report figures (PNG and PDF): learning curves with CI bands, final metric with CI bars, time-to-target bars."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from .probe import KINDS  # noqa: E402
from .referee import no_target_reached  # noqa: E402
from .summary import Report, as_labels  # noqa: E402

FIGURES = ("forest", "learning_curves", "final_metric", "time_to_target")


def _contexts(frame: pd.DataFrame, by: List[str], compared: str) -> List[Tuple[str, pd.DataFrame]]:
    """One panel per context: the grouping columns other than the compared one (variant, or --baseline's column)."""
    cols = [c for c in by if c != compared]
    if not cols:
        return [("all runs", frame)]
    keys = as_labels(frame, cols).agg(" · ".join, axis=1)
    return [(k, frame[keys == k]) for k in dict.fromkeys(keys)]


def _colors(labels) -> Dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(sorted(labels))}


def _band(values: np.ndarray) -> Tuple[float, float, float]:
    """Mean and 95% t-interval of one epoch's values across seeds (no band for one seed)."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    if len(v) < 2 or v.std() == 0:
        return float(v.mean()), float(v.mean()), float(v.mean())
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _row_of_panels(contexts: List[Tuple[str, pd.DataFrame]]):
    """One panel per context, tall enough for its longest list of variants."""
    rows = max(len(frame) for _, frame in contexts)
    return plt.subplots(1, len(contexts), figsize=(6 * len(contexts), 1.2 + 0.45 * rows), squeeze=False)


def save_figure(fig, out_dir: Path, name: str) -> List[Path]:
    """NAME.png and NAME.pdf without timestamps or version stamps, so the same records give byte-identical files."""
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=120, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    plt.close(fig)
    return paths


def learning_curves(results: pd.DataFrame, report: Report, out_dir: Path) -> List[Path]:
    ok = results[results["status"] == "ok"].copy()
    line = report.compared
    ok[line] = as_labels(ok, [line])[line]
    contexts = _contexts(ok, report.by, line)
    colors = _colors(ok[line].unique())
    panels = [("epoch", "val_acc"), ("epoch", "train_loss"), ("steps", "val_acc"), ("steps", "train_loss")]
    fig, axes = plt.subplots(len(contexts), 4, figsize=(18, 3.6 * len(contexts)), squeeze=False)
    for row, (name, frame) in zip(axes, contexts):
        for variant, g in frame.groupby(line, sort=True):
            per_epoch = g.groupby("epoch")
            epochs = sorted(per_epoch.groups)
            steps = [float(per_epoch.get_group(e)["steps"].mean()) for e in epochs]
            for ax, (xkey, ykey) in zip(row, panels):
                band = np.array([_band(per_epoch.get_group(e)[ykey].to_numpy(float)) for e in epochs])
                if ykey.endswith("acc"):
                    band[:, 1:] = band[:, 1:].clip(0.0, 1.0)  # a t-interval can overshoot [0, 1]; accuracy cannot
                x = epochs if xkey == "epoch" else steps
                ax.plot(x, band[:, 0], color=colors[variant], label=variant, lw=1.6)
                ax.fill_between(x, band[:, 1], band[:, 2], color=colors[variant], alpha=0.18, lw=0)
        for ax, (xkey, ykey) in zip(row, panels):
            ax.set_xlabel("epoch" if xkey == "epoch" else "optimizer steps")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))  # 5-digit step counts must not overlap
            ax.set_ylabel(ykey.replace("_", " "))
            ax.set_title(name, fontsize=9)
            ax.grid(alpha=0.3)
            if ykey == "train_loss":
                ax.set_yscale("log")
                lo, hi = ax.get_ylim()
                if hi < 10 * lo:  # under a decade log ticks read "1.9×10⁰" (minor ticks only): plain numbers instead
                    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
                    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g"))
        row[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("learning curves: mean over seeds with 95% CI band", y=1.0)
    fig.tight_layout()
    return save_figure(fig, out_dir, "learning_curves")


def final_metric(report: Report, out_dir: Path) -> List[Path]:
    m, k = report.metric, (100.0 if "acc" in report.metric else 1.0)
    line = report.compared
    contexts = _contexts(report.summary, report.by, line)
    colors = _colors(report.summary[line].astype(str).unique())
    fig, axes = _row_of_panels(contexts)
    for ax, (name, s) in zip(axes[0], contexts):
        s = s.sort_values(f"{m}_mean", kind="stable")
        y = np.arange(len(s))
        mean = k * s[f"{m}_mean"].to_numpy(float)
        lo, hi = k * s[f"{m}_ci_low"].to_numpy(float), k * s[f"{m}_ci_high"].to_numpy(float)
        err = np.where(np.isfinite(lo), np.vstack([mean - lo, hi - mean]), 0.0)
        ax.errorbar(mean, y, xerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
        ax.scatter(mean, y, c=[colors[str(v)] for v in s[line]], zorder=3, s=40)
        ax.set_yticks(y, [f"{v} (n={n})" for v, n in zip(s[line], s["n_seeds"])], fontsize=8)
        ax.set_xlabel(m.replace("_", " ") + (" (%)" if k == 100 else "") + ", mean ± 95% CI")
        ax.set_title(name, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out_dir, "final_metric")


def time_to_target(report: Report, out_dir: Path) -> List[Path]:
    if no_target_reached(report.summary):  # every bar would read 0/N (the report's notes say so)
        return []
    line = report.compared
    contexts = _contexts(report.summary, report.by, line)
    fig, axes = _row_of_panels(contexts)
    for ax, (name, s) in zip(axes[0], contexts):
        s = s.sort_values(line, kind="stable")
        y = np.arange(len(s))
        steps = s["steps_to_target_median"].to_numpy(float)
        ax.barh(y, np.nan_to_num(steps), color="tab:blue", alpha=0.7)
        top = np.nanmax(steps) if np.isfinite(steps).any() else 1.0
        for yi, st, reached in zip(y, steps, s["reached"]):
            ax.text((st if math.isfinite(st) else 0) + 0.01 * top, yi, f"median not reached ({reached})"
                    if not math.isfinite(st) else f"{st:,.0f} ({reached})", va="center", fontsize=7)
        ax.set_yticks(y, s[line].astype(str).tolist(), fontsize=8)
        target = s["target"].iloc[0] if len(s) else math.nan
        ax.set_xlabel(f"optimizer steps until val acc ≥ {target:.3g} (Kaplan–Meier median; runs that never reach "
                      "it are censored)")
        ax.set_title(name, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out_dir, "time_to_target")


VERDICT_COLORS = {"better": "tab:green", "worse": "tab:red", "equivalent": "tab:blue", "undecided": "tab:gray"}


def forest(report: Report, out_dir: Path) -> List[Path]:
    """Each comparison's difference with its anytime-valid interval (the one its verdict is read off) against the
    ±margin band, one panel per family; an interval still unbounded is drawn to the panel's edge with an arrow."""
    c = report.comparisons
    if c.empty:
        return []
    k = 100.0 if "acc" in report.metric else 1.0
    fams = list(dict.fromkeys(c["family"]))
    fig, axes = plt.subplots(1, len(fams), figsize=(6.5 * len(fams), 1.3 + 0.42 * c.groupby("family").size().max()),
                             squeeze=False)
    margin = report.settings.margin if report.settings else None
    for ax, fam in zip(axes[0], fams):
        part = c[c["family"] == fam].reset_index(drop=True)
        diff, lo, hi = (k * part[col].to_numpy(float) for col in ("diff", "ci_low", "ci_high"))
        finite = np.concatenate([diff[np.isfinite(diff)], lo[np.isfinite(lo)], hi[np.isfinite(hi)],
                                 [0.0] + ([k * margin, -k * margin] if margin else [])])
        span = max(finite.max() - finite.min(), 1e-9)
        left, right = finite.min() - 0.15 * span, finite.max() + 0.15 * span
        if margin:
            ax.axvspan(-k * margin, k * margin, color="tab:blue", alpha=0.08, lw=0, label=f"±{k * margin:g} margin")
        ax.axvline(0, color="black", lw=0.8)
        y = np.arange(len(part))[::-1]
        for yi, d, a, b, v in zip(y, diff, lo, hi, part["verdict"]):
            color = VERDICT_COLORS.get(v, "black")
            a_, b_ = max(a, left), min(b, right)
            ax.plot([a_, b_], [yi, yi], color=color, lw=1.8)
            for end, edge, mark in ((a, left, "<"), (b, right, ">")):
                if not math.isfinite(end) or end != max(min(end, right), left):
                    ax.plot([edge], [yi], marker=mark, color=color, ms=6)
            if math.isfinite(d):
                ax.plot([d], [yi], "o", color=color, ms=5)
        ax.set_xlim(left, right)
        ax.set_yticks(y, [f"{a} vs {b} (n={n}): {v}" for a, b, n, v in
                          zip(part["a"], part["b"], part["n_pairs"], part["verdict"])], fontsize=8)
        ax.set_xlabel(f"Δ {report.metric.replace('_', ' ')}{' (points)' if k == 100 else ''}, A − B, with the "
                      f"anytime-valid CI at 1 − α/{int(part['family_size'].iloc[0])}")
        ax.set_title(fam, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        if margin:
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out_dir, "forest")


def probe_figure(table: pd.DataFrame, report: Report, out_dir: Path) -> List[Path]:
    """train.probe's numbers by depth, one row of panels per context: each layer's gradient norm at initialisation
    (the first probed step) and at the last probed epoch (Xiong et al. 2020, Fig. 3), and, for models with residual
    blocks, the stream's RMS after each block at both times (dashed: initialisation). Lines are means over seeds."""
    line = report.compared
    kinds = [k for k in KINDS if (table["kind"] == k).any()]
    contexts = _contexts(table, report.by, line)
    colors = _colors(table[line].unique())
    panels = [(k, when) for k in kinds for when in (("first", "last") if k == "grad_norm" else ("both",))]
    fig, axes = plt.subplots(len(contexts), len(panels), figsize=(6 * len(panels), 3.8 * len(contexts)),
                             squeeze=False)
    for row, (name, frame) in zip(axes, contexts):
        first, last = frame["step"].min(), frame.groupby("run_key")["step"].max().min()
        for ax, (kind, when) in zip(row, panels):
            part = frame[frame["kind"] == kind]
            times = {"first": [(first, "-")], "last": [(last, "-")], "both": [(first, "--"), (last, "-")]}[when]
            for variant, g in part.groupby(line, sort=True):
                for step, style in times:
                    at = g[g["step"] == step].groupby("depth")["value"].mean()
                    ax.plot(at.index, at.to_numpy(float), style, color=colors[variant], lw=1.5,
                            label=variant if style == "-" else None)
            ax.set_yscale("log")
            ax.set_xlabel("layer (model order)" if kind == "grad_norm" else "residual block")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            steps = f"step {first}" if when == "first" else f"step {last}" if when == "last" else \
                f"step {first} (dashed) and {last}"
            ax.set_title(f"{name}: {KINDS[kind]}, {steps}", fontsize=9)
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.suptitle("gradient-norm probe (train.probe): mean over seeds", y=1.0)
    fig.tight_layout()
    return save_figure(fig, out_dir, "grad_norms")
