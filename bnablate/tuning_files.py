"""Where `sweep --tune` keeps its files: OUT_DIR/tuning/ holds the tuning runs, selection.csv (each cell's selected
values) and candidates.csv (every candidate's validation score). Kept apart from bnablate.tuning, which plans and runs
sweeps, so the report can read these files without importing the sweep machinery (that import was circular:
sweep_plan → reports → tuned → tuning → sweep_plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from .atomic import atomic_write_text
from .keys import override_key

TUNING_DIR = "tuning"  # OUT_DIR/tuning: the tuning runs' records and tables, selection.csv, candidates.csv
SELECTION = "selection.csv"
CANDIDATES = "candidates.csv"


def tuning_dir(out_dir: Path) -> Path:
    return Path(out_dir) / TUNING_DIR


def result_overrides(overrides: str) -> str:
    """A cell or context string without the overrides that cannot change results (threads, devices, paths, evaluation
    batch size): the same grid point, whatever execution options a command added."""
    from .config import NON_RESULT_KEYS

    return " ".join(i for i in overrides.split(" ") if i and override_key(i) not in NON_RESULT_KEYS)


def write_selection(out_dir: Path, table: pd.DataFrame, candidates: pd.DataFrame) -> None:
    """Merge this sweep's cells into OUT_DIR/tuning/selection.csv and candidates.csv (cells of earlier tunings kept:
    the report refuses unequal budgets among compared groups unless asked). A cell is the same grid point whatever
    execution options its command carried: a rerun with `threads=1` replaces the rows of one without."""
    folder = tuning_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in ((SELECTION, table), (CANDIDATES, candidates)):
        path = folder / name
        if path.exists():
            old = pd.read_csv(path, dtype=str, keep_default_na=False)
            new_cells = {result_overrides(c) for c in frame["cell"]}
            old = old[~old["cell"].map(result_overrides).isin(new_cells)]
            frame = pd.concat([old, frame.astype(str)], ignore_index=True)
        atomic_write_text(path, frame.to_csv(index=False))


def load_selection(out_dir: Path) -> Optional[pd.DataFrame]:
    path = tuning_dir(out_dir) / SELECTION
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None
