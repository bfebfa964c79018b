"""The run record's schema: one reader (version check, validation) for every consumer, and quarantine of bad files.

A record is `records/<run_key>.json`, a JSON object (docs/reports.md#run-records). Checked with a small typed check
rather than pydantic/jsonschema: a record is a free-form config plus a few typed fields, the checks that matter
(the file name, the run key recomputed from the config, the epochs' numbers) are not schema-expressible anyway, and
a validation library would be a dependency for ~40 lines."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..config import NEUTRAL_VALUES
from ..keys import get_key
from .correctness import FIELD as CORRECT_FIELD, record_correct
from .records import RECORDS_DIR, SCHEMA_VERSION, record_path, run_key

# SCHEMA_VERSION 2 adds the schema_version field itself; records without it are version 1, of the same shape.
STATUSES = ("ok", "diverged", "failed", "pruned")
FINISHED = ("ok", "diverged")  # deterministic outcomes: a resumed sweep skips them; failed runs are retried
# pruned: a tuning trial stopped by its study's pruner (record["pruned"] names it), finished only for a study with
# that pruner (bnablate/tune_trials.py); anywhere else it trains again, like a failed run
QUARANTINE_DIR = "quarantine"  # records/quarantine/<name>.<UTC time>: bad files moved aside with their bytes intact
# What every record's config holds: the keys every table and report groups by (keys added since the first release
# are optional: a record without one ran at its neutral value).
REQUIRED_CONFIG = tuple(k for k in ("dataset.name", "model.name", "variant.norm", "variant.placement",
                                    "variant.dropout", "variant.dropout_p", "variant.bias", "optim.name", "optim.lr",
                                    "train.epochs", "train.batch_size", "seed", "sweep.name")
                        if k not in NEUTRAL_VALUES)
EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")


class RecordError(ValueError):
    """A file in records/ that is not a readable record of this schema; the message says what is wrong."""


class RecordVersionError(RecordError):
    """A record written by a newer bnablate (a higher schema_version): an error everywhere, never skipped."""


@dataclass(frozen=True)
class BadRecord:
    path: Path
    problem: str

    def line(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class RecordScan:
    """Every file of one records/ folder: the valid records (file order) and the bad files with what is wrong."""

    records: List[Dict[str, Any]] = field(default_factory=list)
    bad: List[BadRecord] = field(default_factory=list)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def problem(rec: Any, path: Path) -> Optional[str]:
    """What makes `rec` (parsed from `path`) not a record, or None. Raises RecordVersionError for a newer version."""
    if not isinstance(rec, dict):
        return f"not a run record (a JSON {type(rec).__name__}, not an object)"
    version = rec.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"schema_version must be a positive integer, got {version!r}"
    if version > SCHEMA_VERSION:
        raise RecordVersionError(
            f"{path} is a version-{version} run record, written by a newer bnablate; this one reads record versions "
            f"up to {SCHEMA_VERSION}. Upgrade bnablate (pip install -U bnablate) to read that folder, or move the file "
            f"out of {path.parent}.")
    key, status, cfg, metrics = rec.get("run_key"), rec.get("status"), rec.get("config"), rec.get("metrics")
    if not isinstance(key, str) or not key:
        return "not a run record (no run_key)"
    if path.stem != key:
        return f"holds run {key} but is named {path.name} (copied or renamed?)"
    if status not in STATUSES:
        return f"status {status!r} is none of {', '.join(STATUSES)}"
    if not isinstance(cfg, dict):
        return "has no config"
    missing = [k for k in REQUIRED_CONFIG if get_key(cfg, k) is None]
    if missing:
        return f"its config lacks {', '.join(missing)}"
    if run_key(cfg) != key:
        return f"its config hashes to run key {run_key(cfg)}, not to its run_key {key} (edited after the run?)"
    if not isinstance(metrics, list) or (status in (*FINISHED, "pruned") and not metrics):
        return f"status {status} but no per-epoch metrics"
    for i, row in enumerate(metrics, start=1):
        bad = [f for f in EPOCH_FIELDS if not isinstance(row, dict) or not _number(row.get(f))]
        if bad:
            return f"epoch row {i} lacks a number for {', '.join(bad)}"
    if status == "ok" and not all(math.isfinite(r["train_loss"]) for r in metrics):
        return "status ok with a non-finite train_loss (a diverged run is status diverged)"
    return _correct_problem(rec) if CORRECT_FIELD in rec else None


def _correct_problem(rec: Dict[str, Any]) -> Optional[str]:
    """What is wrong with a record's test_correct (optional: records before it have none), or None: it must decode,
    hold n_test examples, and agree with the last epoch's test_acc (which is correct count / n)."""
    try:
        mask = record_correct(rec)
    except ValueError as e:
        return str(e)
    n_test, metrics = rec.get("n_test"), rec["metrics"]
    if n_test is not None and len(mask) != n_test:
        return f"{CORRECT_FIELD} holds {len(mask)} test examples, but n_test is {n_test!r}"
    if not metrics:
        return f"{CORRECT_FIELD} without per-epoch metrics"
    hits, last = int(mask.sum()), metrics[-1]["test_acc"]
    if not abs(hits / max(len(mask), 1) - last) <= 1e-12:  # NaN fails too
        return f"{CORRECT_FIELD} marks {hits} of {len(mask)} test examples correct, but the last epoch's test_acc is " \
               f"{last!r}"
    return None


def strict_error(bad: Sequence[BadRecord]) -> RecordError:
    """The --strict error of report and verify: every bad file named, and the ways out."""
    return RecordError(f"{len(bad)} bad record file(s) (--strict): " + "; ".join(b.line() for b in bad) +
                       ". Move them aside or rerun the sweep (it quarantines them and retrains their runs), or drop "
                       "--strict.")


def read_record(path: Path) -> Dict[str, Any]:
    """The record in `path`, validated; RecordError saying what is wrong (RecordVersionError: a newer version)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise RecordError(f"unreadable ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise RecordError("not text (binary bytes)") from None
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}; truncated?)") from None
    found = problem(rec, Path(path))
    if found:
        raise RecordError(found)
    return rec


def record_files(out_dir: Path) -> List[Path]:
    folder = Path(out_dir) / RECORDS_DIR
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def scan_records(out_dir: Path) -> RecordScan:
    """Every record file of out_dir, read and checked; a newer-version record raises RecordVersionError."""
    scan = RecordScan()
    for path in record_files(out_dir):
        try:
            scan.records.append(read_record(path))
        except RecordVersionError:
            raise
        except RecordError as e:
            scan.bad.append(BadRecord(path, str(e)))
    return scan


def load_records(out_dir: Path) -> List[Dict[str, Any]]:
    """The valid records of out_dir (bad files are left out here: a sweep quarantines them, report and verify name
    them, from scan_records)."""
    return scan_records(out_dir).records


def finished(out_dir: Path, key: str) -> Optional[Dict[str, Any]]:
    """The record of a finished run (ok or diverged, both deterministic outcomes), or None: absent, failed (failed
    runs rerun) or bad (it retrains; the caller quarantines the file first)."""
    try:
        rec = read_record(record_path(out_dir, key))
    except RecordVersionError:
        raise
    except RecordError:
        return None
    return rec if rec["status"] in FINISHED else None


def quarantine(bad: Sequence[BadRecord]) -> List[Path]:
    """Move each bad file to records/quarantine/<name>.<UTC time> (a rename: its bytes intact; nothing is deleted),
    so the run it was for trains again; returns the new paths."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for item in bad:
        target_dir = item.path.parent / QUARANTINE_DIR
        target_dir.mkdir(exist_ok=True)
        target, n = target_dir / f"{item.path.name}.{stamp}", 1
        while target.exists():  # two bad files of one name within a second: never overwrite one
            target, n = target_dir / f"{item.path.name}.{stamp}.{n}", n + 1
        os.replace(item.path, target)
        moved.append(target)
    return moved
