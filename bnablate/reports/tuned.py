"""The report's view of `sweep --tune`: tuned keys are chosen per group, not factors; each group's selected values as
`selected.<key>` columns; the protocol and budget in the notes (unequal budgets refused unless allowed); and the
sensitivity figure (validation score against each tuned value, a line per group)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import pandas as pd

from ..results.tables import FACTOR_COLUMNS
from ..tuning_files import CANDIDATES, load_selection, result_overrides, tuning_dir

PROTOCOL = ("budget", "grid", "mode", "metric", "tune_seeds")  # what must be equal for a fair comparison
STUDY_PROTOCOL = ("sampler", "pruner")  # and, for groups tuned by Optuna studies, how the trials were drawn and cut
_SHORT = {dotted: short for short, dotted in FACTOR_COLUMNS.items()}  # optim.lr → lr (the runs table's column)


@dataclass
class Tuned:
    """The selection(s) of the report's folders and their candidates' scores."""
    selection: pd.DataFrame
    candidates: pd.DataFrame

    @property
    def keys(self) -> List[str]:
        return [c[len("selected."):] for c in self.selection.columns if c.startswith("selected.")]

    @property
    def columns(self) -> List[str]:
        """The tuned keys as runs-table columns (optim.lr → lr)."""
        return [_SHORT.get(k, k) for k in self.keys]

    @property
    def study(self) -> bool:
        """Tuned by Optuna studies (a range, a sampler or a pruner): selection.csv has their columns."""
        return "sampler" in self.selection and (self.selection["sampler"].astype(str) != "").any()

    def protocols(self) -> pd.DataFrame:
        extra = [c for c in STUDY_PROTOCOL if c in self.selection]
        return self.selection[list(PROTOCOL) + extra].drop_duplicates()

    def check_budgets(self, allow_unequal: bool) -> Optional[str]:
        """ValueError when the folders' groups were tuned under different protocols (budget, grid, mode, metric or
        tuning seeds), unless allowed — then a note saying so."""
        protocols = self.protocols()
        if len(protocols) <= 1:
            return None
        text = " vs ".join(f"{r['grid']} ({r['mode']}, {r['metric']}, {r['budget']} runs)"
                           for _, r in protocols.iterrows())
        if not allow_unequal:
            raise ValueError(f"the groups were tuned under different protocols: {text}; a comparison under unequal "
                             "tuning budgets favours the better-tuned side. Tune them again with one --tune, or pass "
                             "--allow-unequal-budgets to report anyway (the note then says so).")
        return f"Tuned under unequal protocols (allowed by --allow-unequal-budgets): {text}."

    def note(self) -> str:
        r = self.selection.iloc[0]
        who = "each group at its own values" if r["mode"] == "per-variant" else "one value shared by a context's groups"
        if self.study:
            spent = "; ".join(f"{g['group']} {g['epochs']} epochs ({g['trials']} trials, {g['pruned']} pruned)"
                              for _, g in self.selection.iterrows())
            return (f"Tuned ({who}) by Optuna studies: {r['grid']}, {r['sampler']} sampler, pruner {r['pruner']} "
                    f"(on the per-epoch mean validation score over the tuning seeds), {r['candidates']} trials per "
                    f"group, each one value on every tuning seed ({r['tune_seeds']}, disjoint from the evaluation "
                    f"seeds), chosen on {r['metric']} (validation split; the test split is never used for "
                    f"selection); tuning epochs spent: {spent}; every trial in tuning/candidates.csv.")
        cands = int(r["candidates"])
        return (f"Tuned ({who}): {r['grid']}, chosen on {r['metric']} (validation split; the test split is never "
                f"used for selection) over tuning seeds {r['tune_seeds']}, disjoint from the evaluation seeds; "
                f"budget {cands} candidates × {len(str(r['tune_seeds']).split(','))} seeds = {r['budget']} runs per "
                f"group; selected values in the selected.* columns, every candidate in tuning/candidates.csv.")


    def edge_notes(self) -> List[str]:
        """Selected values on a grid's edge or in a range's outer 10 %: the optimum may lie outside what was
        searched (the referee's warning)."""
        from ..tune_space import space_from

        notes = []
        for _, r in self.selection.iterrows():
            space = space_from(str(r["grid"]).replace(" ", ""))
            if space is None:
                continue
            values = {k: str(r[f"selected.{k}"]) for k in self.keys}
            notes += [f"{r['group']} ({context_title(str(r['context']), 200)}): {n}" for n in space.edge_notes(values)]
        return [f"Tuned to the edge: {'; '.join(notes)}"] if notes else []


def load_tuned(dirs: Sequence[Path]) -> Optional[Tuned]:
    """The tuning of these folders (OUT_DIR/tuning/selection.csv), or None for a sweep that was not tuned."""
    selections, candidates = [], []
    for d in dirs:
        sel = load_selection(Path(d))
        if sel is not None:
            selections.append(sel)
            path = tuning_dir(Path(d)) / CANDIDATES
            if path.exists():
                candidates.append(pd.read_csv(path, dtype=str, keep_default_na=False))
    if not selections:
        return None
    return Tuned(pd.concat(selections, ignore_index=True),
                 pd.concat(candidates, ignore_index=True) if candidates else pd.DataFrame())


def selected_columns(summary: pd.DataFrame, runs: pd.DataFrame, by: Sequence[str], tuned: Tuned) -> pd.DataFrame:
    """summary with a selected.<key> column per tuned key: the value its group's runs were trained at."""
    from .summary import as_labels

    labels = as_labels(runs, list(by))
    group_of = labels.astype(str).agg("\x1f".join, axis=1)
    row_of = summary[list(by)].astype(str).agg("\x1f".join, axis=1)
    for key, col in zip(tuned.keys, tuned.columns):
        if col not in runs:
            continue
        values = runs[col].astype(str).groupby(group_of).agg(lambda v: ",".join(sorted(set(v))))
        summary[f"selected.{key}"] = [values.get(r, "") for r in row_of]
    return summary


def context_title(context: str, width: int = 60) -> str:
    """A panel's title: the context's result overrides only (threads, devices, paths and evaluation batch sizes on the
    command line do not change the numbers), wrapped to fit a 5-inch panel."""
    import textwrap

    kept = result_overrides(context)
    return textwrap.fill(kept, width) if kept else "all runs"


def sensitivity(tuned: Tuned, out_dir: Path) -> List[Path]:
    """sensitivity.png/.pdf: per context, the mean validation score of every candidate (every trial of a study)
    against each tuned value, a line per group, the selected value circled, a study's pruned trials as × where they
    stood when stopped (with several tuned keys, each panel shows a key's value against the best score over the
    other keys' values); log x where the values span a factor of 10 or more."""
    import matplotlib.pyplot as plt

    from .plots import _colors, save_figure

    c = tuned.candidates
    if c.empty:
        return []
    c = c.assign(score=pd.to_numeric(c["score"], errors="coerce"), selected=c["selected"].astype(str) == "True")
    metric = str(tuned.selection["metric"].iloc[0])
    contexts = list(dict.fromkeys(c["context"]))
    keys = tuned.keys
    fig, axes = plt.subplots(len(keys), len(contexts), figsize=(5 * len(contexts), 3.6 * len(keys)), squeeze=False)
    colors = _colors(sorted(set(c["label"])))
    for row, key in enumerate(keys):
        for col, context in enumerate(contexts):
            ax = axes[row][col]
            part = c[c["context"] == context].assign(x=lambda f: pd.to_numeric(f[key], errors="coerce"))
            for label, g in part.groupby("label", sort=True):
                prof = g.groupby("x")["score"].max().sort_index()
                ax.plot(prof.index, 100 * prof.values, "o-", color=colors[label], label=label, ms=4)
                pick = g[g["selected"]]
                ax.plot(pick["x"], 100 * pick["score"], "o", ms=11, mfc="none", mec=colors[label])
                if "state" in g:  # a study's pruned trials: where they stood when stopped
                    cut = g[g["state"] == "pruned"]
                    ax.plot(cut["x"], 100 * pd.to_numeric(cut["last_value"], errors="coerce"), "x", ms=6,
                            color=colors[label], label=f"{label} (pruned)" if len(cut) else None)
            xs = part["x"].dropna()
            if len(xs) and (xs > 0).all() and xs.max() / xs.min() >= 10:
                ax.set_xscale("log")
            ax.set_xlabel(key)
            ax.set_ylabel(f"{metric} (%), mean over tuning seeds" if "acc" in metric else metric)
            ax.set_title(context_title(context), fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    paths = save_figure(fig, out_dir, "sensitivity")
    plt.close(fig)
    return paths
