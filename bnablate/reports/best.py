"""`report.compare=best` (`sweep --goal best`): each family's race read off its all-pairs comparisons — which variant
is best, or which are tied within the margin — as the report's notes and a `race` column (stats/race.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List

import pandas as pd

from ..stats.race import Race, race

if TYPE_CHECKING:
    from .comparisons import Settings


def family_race(rows: pd.DataFrame, settings: "Settings") -> Race:
    """The race of one family from its all-pairs rows, intervals oriented so that larger is better."""
    sign = 1.0 if settings.metric.higher_is_better else -1.0
    intervals = {(str(a), str(b)): (lo, hi) if sign > 0 else (-hi, -lo)
                 for a, b, lo, hi in zip(rows["a"], rows["b"], rows["ci_low"], rows["ci_high"])}
    return race(list(dict.fromkeys([*map(str, rows["a"]), *map(str, rows["b"])])), intervals, settings.margin)


def races(comparisons: pd.DataFrame, settings: "Settings") -> Dict[str, Race]:
    return {fam: family_race(rows, settings) for fam, rows in comparisons.groupby("family", sort=False)}


def race_notes(summary: pd.DataFrame, comparisons: pd.DataFrame, settings: "Settings") -> List[str]:
    """One note per family ("best: X, within ±m of every other", "tied …", or who remains), and each group's place
    in the race in summary["race"]: best, in the race, or eliminated by a variant decided better."""
    summary["race"] = ""
    notes = []
    for fam, r in races(comparisons, settings).items():
        rows = comparisons[comparisons["family"] == fam]
        notes.append(f"{fam}: {r.claim(settings.margin_text())} (family-wise error ≤ α={settings.alpha:g} over its "
                     f"{len(rows)} pairs).")
        in_family = summary["family"] == fam
        labels = summary.loc[in_family, settings.compared].astype(str)
        for i, g in labels.items():
            summary.at[i, "race"] = ("best" if g in r.certified else f"eliminated by {r.eliminated[g]}"
                                     if g in r.eliminated else "in the race")
    return notes


__all__ = ["family_race", "race_notes", "races"]
