"""The report's comparisons: one family per question (the grouping columns other than the compared one), each group
against the baseline or all pairs of groups, their verdicts under the report's design (bnablate.stats) and the rank
read off them."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..stats import Verdict, compare_paired
from ..stats.bootstrap import seeds_and_tests
from ..stats.decide import holm
from ..stats.designs import ANYTIME, Design
from .divergence import withhold_if_diverged
from .metrics import Metric, family_resolution


def split_baseline(baseline: str) -> Tuple[str, str]:
    """(compared column, baseline value): 'no_bn' → ('variant', 'no_bn'); 'finetune.bn=train' → ('finetune.bn',
    'train'), for comparing the values of any factor (fine-tuning modes, eval statistics) within each variant."""
    column, sep, value = baseline.partition("=")
    return (column.strip(), value.strip()) if sep else ("variant", baseline)


@dataclass(frozen=True)
class Settings:
    """What a report decides with: the metric, the error rate, the declared margin, and what is compared."""
    metric: Metric
    alpha: float
    margin_points: Optional[float]  # as declared or defaulted, in display points (None: no equivalence calls)
    compare: str  # baseline | pairs | best
    baseline: str  # a variant, or COLUMN=VALUE
    design: Design = ANYTIME  # a plan's design (reports/plans.py); families its runs do not match use ANYTIME

    @property
    def margin(self) -> Optional[float]:
        """The margin in the metric's own units (accuracy 0.01 for 1 point)."""
        return None if self.margin_points is None else self.margin_points / self.metric.scale

    @property
    def compared(self) -> str:
        return split_baseline(self.baseline)[0]

    def method(self, family_size: int, design: Optional[Design] = None, holm: bool = False) -> str:
        return (design or self.design).describe(family_size, self.alpha, holm)

    def margin_text(self) -> str:
        return (f"margin ±{self.margin_points:g}{' pts' if self.metric.scale == 100 else ''}"
                if self.margin_points is not None else "no margin declared (no equivalence calls; --margin M)")


def context_columns(by: Sequence[str], compared: str) -> List[str]:
    return [c for c in by if c != compared]


def families(summary: pd.DataFrame, by: Sequence[str], compared: str) -> List[Tuple[str, pd.Index]]:
    """(label, row index) per family: the groups that share every grouping column but the compared one, e.g.
    'digits · lenet'. A family is one question, so adding an unrelated folder to a report leaves it unchanged."""
    cols = context_columns(by, compared)
    if not cols:
        return [("all runs", summary.index)]
    labels = summary[cols].astype(str).agg(" · ".join, axis=1)
    return [(label, summary.index[labels == label]) for label in dict.fromkeys(labels)]


def _test_bits(a_runs: Mapping[int, str], b_runs: Mapping[int, str], seeds: Sequence[int],
               correctness: Mapping[str, np.ndarray]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """The paired runs' correctness bits as two (seeds, images) arrays, when every paired run recorded them."""
    a = [correctness.get(a_runs.get(s, "")) for s in seeds]
    b = [correctness.get(b_runs.get(s, "")) for s in seeds]
    if len(seeds) < 2 or any(x is None for x in a + b) or len({len(x) for x in a + b}) != 1:
        return None
    return np.stack(a), np.stack(b)


def _row(summary: pd.DataFrame, i, j, family: str, k: int, settings: Settings, plan: "FamilyPlan",
         correctness: Mapping[str, np.ndarray]) -> Dict[str, object]:
    m = settings.metric
    level = plan.levels.get((i, j), settings.alpha / k)
    c = compare_paired(summary.at[i, "_values"], summary.at[j, "_values"], family_size=k, alpha=settings.alpha,
                       margin=settings.margin, resolution=plan.resolution, higher_is_better=m.higher_is_better,
                       design=plan.design, level=level)
    compared = settings.compared
    row: Dict[str, object] = {
        "family": family, "family_size": k, "compared": compared, "a": summary.at[i, compared],
        "b": summary.at[j, compared], "n_pairs": c.n, "seeds": ",".join(map(str, c.seeds)),
        "lost_seeds": ",".join(map(str, c.lost)), "diff": c.diff, "ci_low": c.ci_low, "ci_high": c.ci_high,
        "ci_level": 1 - level, "p_adj": plan.p_adj.get((i, j), c.p), "p_tost_adj": c.p_tost, "e_value": c.e_value,
        "margin": settings.margin, "verdict": c.verdict.value, "effect_dz": c.effect_dz, "sd_diff": c.sd,
        "mde": c.mde, "seeds_needed": c.seeds_needed, "seeds_needed_fixed": c.seeds_needed_fixed,
        "p_improve": c.p_improve, "p_improve_ci_low": c.p_improve_low, "p_improve_ci_high": c.p_improve_high,
        "churn": math.nan, "diff_ci_low_tests": math.nan, "diff_ci_high_tests": math.nan,
        "p_improve_ci_low_tests": math.nan, "p_improve_ci_high_tests": math.nan,
        "method": settings.method(k, plan.design, plan.holm), "withheld": "", "_i": i, "_j": j,
    }
    if not math.isfinite(plan.resolution):  # an accuracy whose grid is neither recorded nor readable off the values
        row.update(ci_low=math.nan, ci_high=math.nan, p_adj=math.nan, p_tost_adj=math.nan, verdict="undecided",
                   withheld="resolution unknown: no n_test column and the values lie on no grid of ≤ 10⁶ images")
        return row
    row.update(withhold_if_diverged(summary, i, j, c, level, settings, plan))
    bits = _test_bits(summary.at[i, "_runs"], summary.at[j, "_runs"], c.seeds, correctness) \
        if m.name == "final_test_acc" else None
    if bits is not None:  # Bouthillier et al.: resample test images too, and measure how often predictions differ
        tb = seeds_and_tests(*bits, higher_is_better=m.higher_is_better)
        row.update(churn=tb.churn, diff_ci_low_tests=tb.diff_low, diff_ci_high_tests=tb.diff_high,
                   p_improve_ci_low_tests=tb.p_improve_low, p_improve_ci_high_tests=tb.p_improve_high)
    return row


@dataclass
class FamilyPlan:
    """How one family is judged: its design (the report's, or anytime where its runs do not match it), the
    resolution floor (the coarsest of its groups'), and — for families without a margin — Holm's levels and
    adjusted p-values by pair."""
    design: Design
    resolution: float
    holm: bool = False
    levels: Dict[Tuple[object, object], float] = field(default_factory=dict)
    p_adj: Dict[Tuple[object, object], float] = field(default_factory=dict)
    note: str = ""


def plan_family(summary: pd.DataFrame, family: str, pairs: List[Tuple[object, object]], settings: Settings
                ) -> FamilyPlan:
    """The family's design, floor and (margin-less families) Holm step levels, decided before any verdict."""
    groups = sorted({x for pair in pairs for x in pair}, key=str)
    floors = [float(summary.at[g, "_resolution"]) for g in groups]
    unrecorded = [v for g, f in zip(groups, floors) if math.isnan(f) for v in summary.at[g, "_values"].values()]
    resolution = family_resolution(floors, unrecorded)
    design, note = settings.design, ""
    if design.kind != "anytime":
        counts = sorted({_paired_count(summary, i, j) for i, j in pairs})
        if any(not design.planned(n) for n in counts):
            note = (f"{family}: paired seed counts {', '.join(map(str, counts))} are not the plan's looks "
                    f"({', '.join(map(str, design.looks))}), so its comparisons use the anytime-valid intervals, "
                    "valid however the seeds were added, instead of the planned design.")
            design = ANYTIME
    plan = FamilyPlan(design, resolution, note=note)
    if settings.margin is None and design.has_p and len(pairs) > 1 and math.isfinite(resolution):
        raw = [compare_paired(summary.at[i, "_values"], summary.at[j, "_values"], family_size=len(pairs),
                              alpha=settings.alpha, resolution=resolution, design=design).extra["p_raw"]
               for i, j in pairs]
        adjusted, levels = holm(raw, settings.alpha)
        plan.holm = True
        plan.levels = dict(zip(pairs, levels))
        plan.p_adj = dict(zip(pairs, adjusted))
    return plan


def _paired_count(summary: pd.DataFrame, i, j) -> int:
    a, b = summary.at[i, "_values"], summary.at[j, "_values"]
    return len(set(a) & set(b))


def compare_groups(summary: pd.DataFrame, by: Sequence[str], settings: Settings,
                   correctness: Optional[Mapping[str, np.ndarray]] = None) -> Tuple[pd.DataFrame, List[str]]:
    """One row per comparison (tidy: comparisons.csv) and the notes it needs (families, missing baselines, seeds
    left out of a pairing). summary rows carry `_values` (seed → metric), `_runs` (seed → run key), `_status`
    (seed → status) and `_resolution`."""
    compared, value = split_baseline(settings.baseline)
    labels = summary[compared].astype(str)
    rows, notes, described = [], [], []
    for family, index in families(summary, by, compared):
        if settings.compare in ("pairs", "best"):
            ordered = sorted(index, key=lambda i: labels[i])
            pairs = list(itertools.combinations(ordered, 2))
        else:
            base = [i for i in index if labels[i] == value]
            if not base:
                notes.append(f"{family}: no '{settings.baseline}' runs, so no comparisons (choose --baseline from: "
                             f"{', '.join(sorted(labels[index].unique()))}).")
                continue
            pairs = [(i, base[0]) for i in index if i != base[0]]
        k = len(pairs)
        if not k:
            continue
        plan = plan_family(summary, family, pairs, settings)
        described.append(f"{family}: {k} comparison{'s' * (k > 1)}" +
                         (f" vs {value}" if settings.compare == "baseline" else " (all pairs)") +
                         (" (Holm)" if plan.holm else ""))
        notes += [plan.note] if plan.note else []
        for i, j in pairs:
            rows.append(_row(summary, i, j, family, k, settings, plan, correctness or {}))
    frame = pd.DataFrame(rows)
    if described:
        notes.insert(0, f"Families ({'Holm' if settings.margin is None else 'Bonferroni'} within each, "
                        f"α={settings.alpha:g}; {settings.margin_text()}): " + "; ".join(described) + ".")
    for _, r in frame.iterrows():  # a verdict not given says why, with what was answered instead
        if r.get("withheld"):
            rates = (f"{r['a']} diverges {r['divergence_verdict']} often than {r['b']}"
                     if r.get("divergence_verdict") in ("more", "less") else "divergence rates undecided")
            parts = (f"; {rates} ({r['diverged_a']} vs {r['diverged_b']}); on the {r['n_trained']:.0f} seeds where "
                     f"both trained: {r['verdict_trained']}" if r.get("diverged_a") else "")
            notes.append(f"{r['family']}: {r['a']} vs {r['b']}: no verdict — {r['withheld']}{parts}.")
    unequal = set()  # families whose groups simply ran different seed sets (say so once, not per pair)
    for _, r in frame.iterrows():
        if not r["lost_seeds"]:
            continue
        status = [summary.at[r[f"_{s}"], "_status"] for s in ("i", "j")]
        lost = [int(s) for s in r["lost_seeds"].split(",")]
        if all(st.get(s) in (None, "ok") for s in lost for st in status):
            unequal.add(r["family"])  # every left-out seed was never run on one side: nothing failed
            continue
        why = "; ".join(f"{r[side]}: {_why_lost(st, r['lost_seeds'])}" for side, st in zip(("a", "b"), status))
        notes.append(f"{r['family']}: {r['a']} vs {r['b']} paired on seeds {r['seeds'] or 'none'}; seeds "
                     f"{r['lost_seeds']} left out ({why}).")
    for family, index in families(summary, by, compared):
        if family in unequal:
            counts = ", ".join(f"{labels[i]} {len(summary.at[i, '_status'])}"
                               for i in sorted(index, key=lambda i: labels[i]))
            notes.append(f"{family}: groups ran different numbers of seeds ({counts}); each comparison pairs the "
                         "seeds both sides ran (its n_pairs).")
    return frame, notes


def _why_lost(status: Mapping[int, str], lost: str) -> str:
    seeds = [int(s) for s in lost.split(",")]
    return ", ".join(f"{s} {status.get(s, 'missing')}" for s in seeds)


def verdict_rank(summary: pd.DataFrame, comparisons: pd.DataFrame) -> Tuple[pd.Series, pd.Series]:
    """(rank, decided): per group, 1 + the number of groups decided better than it by the report's own comparisons
    (vs the baseline, or all pairs), so the rank never disagrees with a verdict in the table; `decided` is True for
    the families where at least one comparison is decided better or worse (elsewhere every group is rank 1 because
    nothing is known, and nothing is bolded)."""
    rank = pd.Series(1, index=summary.index, dtype=float)
    decided = pd.Series(False, index=summary.index)
    for _, r in comparisons.iterrows():  # a row says what a is to b
        if r["verdict"] in (Verdict.BETTER.value, Verdict.WORSE.value):
            rank[r["_j"] if r["verdict"] == Verdict.BETTER.value else r["_i"]] += 1
            decided[summary["family"] == r["family"]] = True
    return rank, decided


BASELINE_COLUMNS = ("family", "family_size", "n_pairs", "lost_seeds", "diff", "ci_low", "ci_high", "ci_level", "p_adj",
                    "p_tost_adj", "e_value", "verdict", "effect_dz", "mde", "seeds_needed", "seeds_needed_fixed",
                    "p_improve", "p_improve_ci_low", "p_improve_ci_high", "churn", "diff_ci_low_tests",
                    "diff_ci_high_tests", "method", "withheld")
TEXT_COLUMNS = ("family", "lost_seeds", "verdict", "method", "withheld")


def attach_baseline(summary: pd.DataFrame, comparisons: pd.DataFrame, settings: Settings) -> None:
    """Baseline mode: each group's row gets its comparison with the baseline (Δ = group − baseline); the baseline's
    own row keeps them empty. Pairs mode: wins/losses/equivalences per group."""
    summary["baseline"] = ""
    for col in BASELINE_COLUMNS:
        summary[col] = "" if col in TEXT_COLUMNS else np.nan
    if comparisons.empty:
        return
    if settings.compare == "baseline":
        for _, r in comparisons.iterrows():
            summary.loc[r["_i"], "baseline"] = settings.baseline
            for col in BASELINE_COLUMNS:
                summary.at[r["_i"], col] = r[col]
        return
    for verdict, col in ((Verdict.BETTER, "n_better"), (Verdict.WORSE, "n_worse"),
                         (Verdict.EQUIVALENT, "n_equivalent"), (Verdict.UNDECIDED, "n_undecided")):
        summary[col] = 0
        flip = {Verdict.BETTER: Verdict.WORSE, Verdict.WORSE: Verdict.BETTER}.get(verdict, verdict)
        for _, r in comparisons.iterrows():  # a row says what a is to b; b is the flipped verdict to a
            if r["verdict"] == verdict.value:
                summary.at[r["_i"], col] += 1
            if r["verdict"] == flip.value:
                summary.at[r["_j"], col] += 1
