"""Warnings a referee would raise, as the report's notes: groups still learning at their last epoch (under-trained?),
a time-to-target target no run reaches, and variants that built the same layers as another (reports/same_stack)."""

from __future__ import annotations

import math
from typing import List, Sequence

import pandas as pd

# Under-trained? when the mean over a group's finished (ok) seeds of the relative drop of train_loss over its last
# two epochs, (loss[E−1] − loss[E]) / loss[E−1], exceeds this fraction: the runs had not converged when they stopped.
UNDERTRAINED_DROP = 0.05


def last_loss_drop(results: pd.DataFrame) -> pd.Series:
    """run_key → relative drop of train_loss from the epoch before last to the last (0.2: the loss fell by 20 % in
    the last epoch); runs of one epoch, or without finite positive losses at both epochs, are left out."""
    if results.empty or "train_loss" not in results:
        return pd.Series(dtype=float)
    drops = {}
    for key, g in results.sort_values("epoch").groupby("run_key", sort=False):
        loss = pd.to_numeric(g["train_loss"], errors="coerce").to_numpy()
        if len(loss) >= 2 and math.isfinite(loss[-2]) and math.isfinite(loss[-1]) and loss[-2] > 0:
            drops[key] = float((loss[-2] - loss[-1]) / loss[-2])
    return pd.Series(drops, dtype=float)


def under_trained_note(summary: pd.DataFrame, labels: Sequence[str]) -> List[str]:
    """One note naming the groups whose mean last-epoch drop (summary's train_loss_last_drop_mean) exceeds
    UNDERTRAINED_DROP; none when no group does."""
    if "train_loss_last_drop_mean" not in summary:
        return []
    drop = pd.to_numeric(summary["train_loss_last_drop_mean"], errors="coerce")
    hit = summary[drop > UNDERTRAINED_DROP]
    if hit.empty:
        return []
    named = ", ".join(f"{' / '.join(str(r[c]) for c in labels)} ({100 * r['train_loss_last_drop_mean']:.0f} %)"
                      for _, r in hit.iterrows())
    return [f"Under-trained? The training loss still fell by more than {100 * UNDERTRAINED_DROP:.0f} % over the last "
            f"two epochs (mean over seeds of (loss[E−1] − loss[E]) / loss[E−1]) in: {named}. A verdict on runs that "
            f"had not converged may change with more epochs (train.epochs)."]


def no_target_reached(summary: pd.DataFrame) -> bool:
    """True when the summary has time-to-target columns but not one finished run of any group reached its target:
    the columns then say nothing (every row 0/N), and the tables leave them out."""
    if summary.empty or "reached" not in summary:
        return False
    return all(str(r).split("/")[0] == "0" for r in summary["reached"])


def target_note(summary: pd.DataFrame, runs: pd.DataFrame, baseline: pd.Series, given: bool) -> List[str]:
    """When no run reaches the time-to-target target: a note that the columns are left out, with a target these
    runs would make meaningful (the baseline's median final validation accuracy, else all runs'). baseline: a mask of
    the baseline's runs; given: the target came from --target rather than the runs' dataset.target_acc."""
    if not no_target_reached(summary):
        return []
    targets = sorted({f"{t:g}" for t in pd.to_numeric(summary["target"], errors="coerce") if math.isfinite(t)})
    final = pd.to_numeric(runs.get("final_val_acc", pd.Series(math.nan, index=runs.index)), errors="coerce")
    whose = "the baseline's" if final[baseline].notna().any() else "all runs'"
    final = final[baseline] if final[baseline].notna().any() else final
    note = (f"Time-to-target columns omitted: no run reached the validation accuracy target {', '.join(targets)} "
            f"({'--target' if given else 'dataset.target_acc'}), so every row read 0/N")
    if targets and final.notna().any():
        return [f"{note}; {whose} median final validation accuracy is {final.median():.3g}: report with e.g. "
                f"--target {math.floor(100 * final.median()) / 100:.2f} to compare the time to reach it."]
    return [f"{note}; report with --target T, a validation accuracy these runs reach."] if targets else []
