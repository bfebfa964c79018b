"""Where a report's runs come from: a folder's records (the source of truth) or, for a folder that holds only the
tables (shared without records/), its runs/results tables as Parquet or CSV."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
import pandas as pd

from ..results import parquet
from ..results.correctness import record_correct
from ..results.records import RECORDS_DIR
from ..results.schema import BadRecord, scan_records
from ..results.tables import SUMMARY_COLUMNS, build_tables, run_columns

TABLES = ("results", "runs")


def table_files(folder: Path) -> Optional[Dict[str, Path]]:
    """{'results': path, 'runs': path} of a folder that has no records/ but both tables: the Parquet pair when pyarrow
    can read it (typed as the report's frames), else the CSV pair; None for a folder with records/ or no tables."""
    folder = Path(folder)
    if (folder / RECORDS_DIR).is_dir():
        return None
    for ext in (("parquet", "csv") if parquet.available() else ("csv",)):
        paths = {name: folder / f"{name}.{ext}" for name in TABLES}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


def read_table(path: Path) -> pd.DataFrame:
    """One table as build_tables makes it: Parquet's categoricals and nullable ints back to plain columns, so the
    report groups and labels them exactly as it does frames built from records."""
    if path.suffix != ".parquet":
        return pd.read_csv(path)
    frame = pd.read_parquet(path)
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(object)
        elif isinstance(frame[col].dtype, pd.Int64Dtype):
            frame[col] = frame[col].astype(float if frame[col].isna().any() else "int64")
    return frame


@dataclass
class Sources:
    """The merged runs of several folders: per-epoch rows, one row per run, the identifying columns (in order), the
    records (empty for table folders), the bad record files, and which folders were read from tables."""

    results: pd.DataFrame
    runs: pd.DataFrame
    identifying: List[str]
    records: List[Dict[str, Any]] = field(default_factory=list)
    bad: List[BadRecord] = field(default_factory=list)
    from_tables: List[Path] = field(default_factory=list)
    # run keys met twice with different data fingerprints (same config, other bytes): key → both fingerprints
    data_conflicts: Dict[str, tuple] = field(default_factory=dict)

    def correctness(self) -> Dict[str, np.ndarray]:
        """run key → which test images the run got right at its last epoch, for the records that recorded it."""
        out = {}
        for rec in self.records:
            bits = record_correct(rec)
            if bits is not None:
                out[rec["run_key"]] = bits
        return out


def _latest(frames: Sequence[pd.DataFrame], keep: pd.Series) -> pd.DataFrame:
    """The rows of the concatenated frames whose run_key is in `keep` (index run_key → its winning frame number)."""
    parts = [f.assign(_src=i) for i, f in enumerate(frames) if not f.empty]
    if not parts:
        return pd.DataFrame()
    both = pd.concat(parts, ignore_index=True)
    winner = both["run_key"].map(keep)
    return both[both["_src"] == winner].drop(columns="_src").reset_index(drop=True)


def load_sources(dirs: Iterable[Path]) -> Sources:
    """Every run of `dirs` merged: a run key seen twice counts once (the latest finished). A folder with records/ is
    read from its records; one without, from its tables (see table_files)."""
    by_key: Dict[str, Dict[str, Any]] = {}
    bad: List[BadRecord] = []
    tables: List[tuple] = []
    conflicts: Dict[str, tuple] = {}
    for d in dirs:
        files = table_files(Path(d))
        if files is not None:
            tables.append((Path(d), {name: read_table(p) for name, p in files.items()}))
            continue
        scan = scan_records(Path(d))
        bad += scan.bad
        for rec in scan.records:
            old = by_key.get(rec["run_key"])
            prints = tuple((r.get("data") or {}).get("fingerprint") for r in (old or {}, rec))
            if all(prints) and prints[0] != prints[1]:
                conflicts[rec["run_key"]] = prints
            if old is None or (rec.get("finished_at") or "") > (old.get("finished_at") or ""):
                by_key[rec["run_key"]] = rec
    records = list(by_key.values())
    results, runs = build_tables(records)
    identifying = list(run_columns(records[0])) if records else []
    if not tables:
        return Sources(results, runs, identifying, records, bad, data_conflicts=conflicts)
    run_frames = [runs] + [t["runs"] for _, t in tables]
    for frame in run_frames[1:]:  # a table's identifying columns: everything but the per-run summary
        identifying += [c for c in frame.columns if c not in SUMMARY_COLUMNS and c not in identifying]
    # which frame's row wins for each run key: the latest finished_at (records first on a tie, as they are the truth)
    rows = pd.concat([f[["run_key", "finished_at"]].assign(_src=i) for i, f in enumerate(run_frames) if not f.empty],
                     ignore_index=True)
    rows["_order"] = rows["finished_at"].fillna("").astype(str)
    keep = rows.sort_values(["_order", "_src"], ascending=[True, False]).groupby("run_key")["_src"].last()
    return Sources(_latest([results] + [t["results"] for _, t in tables], keep), _latest(run_frames, keep),
                   identifying, records, bad, [d for d, _ in tables], conflicts)


def mixed_data_notes(src: Sources) -> List[str]:
    """Warnings for runs that saw different data under one dataset name: several fingerprints among the merged runs
    (files overwritten between sweeps, two folders of different data), or one run key in several folders with
    different fingerprints (the same config on other bytes: the report keeps only the latest of each)."""
    runs, notes = src.runs, []
    if src.data_conflicts:
        pairs = sorted({f"{a} vs {b}" for a, b in src.data_conflicts.values()})
        notes.append(f"WARNING: {len(src.data_conflicts)} run key(s) appear in several folders with different data "
                     f"(fingerprints {'; '.join(pairs)}): the same configs trained on other files. The report keeps "
                     f"the latest run of each key, so the earlier data's runs are left out; report each data version "
                     f"from its own folder.")
    if "data_fingerprint" not in runs.columns or "dataset" not in runs.columns:
        return notes
    for name, group in runs.dropna(subset=["data_fingerprint"]).groupby("dataset", observed=True):
        counts = group["data_fingerprint"].astype(str).value_counts()
        if len(counts) > 1:
            seen = ", ".join(f"{n} run(s) on {fp}" for fp, n in counts.items())
            notes.append(f"WARNING: the runs of dataset {name} saw different data ({seen}): the files changed between "
                         f"sweeps or the folders hold different datasets under one name; their comparisons mix them. "
                         f"Report each data version from its own folder.")
    return notes
