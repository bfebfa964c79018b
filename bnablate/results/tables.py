"""Tidy tables rebuilt from run records: results.csv (run × epoch) and runs.csv (one row per run)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Dict, List

import pandas as pd

from ..config import KEYS, neutral_values_for
from ..variants import config_label
from ..atomic import atomic_write_text
from . import parquet
from .schema import load_records

# Short names for the factors every analysis groups by; the rest of the config follows as dotted columns.
FACTOR_COLUMNS = {
    "dataset": "dataset.name", "model": "model.name", "norm": "variant.norm", "placement": "variant.placement",
    "dropout": "variant.dropout", "dropout_p": "variant.dropout_p", "bias": "variant.bias",
    "activation": "variant.activation", "groups": "variant.groups", "optimizer": "optim.name", "lr": "optim.lr",
    "momentum": "optim.momentum", "nesterov": "optim.nesterov", "weight_decay": "optim.weight_decay",
    "schedule": "optim.schedule", "epochs": "train.epochs", "batch_size": "train.batch_size", "seed": "seed",
}
# Paths, free text, report options and pack planning hints (each declared `table=False` by its role): in the
# record, not in the tables. The sweep's name is the `sweep` column.
SKIP_KEYS = frozenset(KEYS.not_in_tables)


def flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """A nested config as dotted keys; lists as '[a,b]' strings (one cell each)."""
    flat: Dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten(v, key + "."))
        else:
            flat[key] = "[" + ",".join(str(x) for x in v) + "]" if isinstance(v, list) else v
    return flat


def run_columns(rec: Dict[str, Any]) -> Dict[str, Any]:
    """The identifying columns of a run: key, status, sweep, variant label, factors, then the rest of the config."""
    cfg = rec["config"]
    # A record written before a key existed ran at that key's neutral value: show it, so old and new runs group alike.
    flat = flatten(cfg)
    for key, neutral in neutral_values_for(cfg).items():
        flat.setdefault(key, neutral)
    row: Dict[str, Any] = {"run_key": rec["run_key"], "status": rec["status"], "sweep": cfg["sweep"]["name"],
                           "variant": config_label(cfg)}
    for short, dotted in FACTOR_COLUMNS.items():
        row[short] = flat.pop(dotted)
    for key, value in flat.items():
        if key not in SKIP_KEYS:
            row[key] = value
    return row


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# The per-run summary columns run_summary adds after the identifying ones (a runs table read without its records
# tells its identifying columns apart by these).
SUMMARY_COLUMNS = (
    "n_params", "epochs_done", "error", "final_train_loss", "final_train_acc", "final_val_loss", "final_val_acc",
    "final_test_loss", "final_test_acc", "best_val_acc", "best_epoch", "test_acc_at_best_val", "steps",
    "train_time_s", "mean_samples_per_s", "peak_mem_mb", "source_test_acc", "wall_time_s", "pack_size", "device_used",
    "finished_at", "n_train", "n_val", "n_test", "data_fingerprint",
)


def run_summary(rec: Dict[str, Any]) -> Dict[str, Any]:
    """Final and best-validation metrics of one run (model selection uses validation accuracy only)."""
    m: List[Dict[str, Any]] = rec.get("metrics") or []
    out: Dict[str, Any] = {"n_params": rec.get("n_params"), "epochs_done": len(m), "error": rec.get("error")}
    if m:
        last = m[-1]
        for k in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
            out[f"final_{k}"] = last[k]
        scored = [r for r in m if _finite(r["val_acc"])]
        if scored:
            best = max(scored, key=lambda r: r["val_acc"])  # first epoch wins ties
            out.update(best_val_acc=best["val_acc"], best_epoch=best["epoch"], test_acc_at_best_val=best["test_acc"])
        out["steps"] = last["steps"]
        out["train_time_s"] = sum(r["epoch_time_s"] for r in m)
        out["mean_samples_per_s"] = sum(r["samples_per_s"] for r in m) / len(m)
    out["peak_mem_mb"] = rec.get("peak_mem_mb")  # records written before it was measured: empty
    pretrain = rec.get("pretrain") or {}  # fine-tuned runs: the source model's accuracy before fine-tuning
    out["source_test_acc"] = pretrain.get("source_test_acc")
    out["wall_time_s"] = rec.get("wall_time_s")
    out["pack_size"] = rec.get("pack_size", 1)  # >1: trained in a pack; timings are the pack's time / pack_size
    out["device_used"] = (rec.get("provenance") or {}).get("device")
    out["finished_at"] = rec.get("finished_at")
    for split in ("n_train", "n_val", "n_test"):  # image counts: an accuracy's resolution is 1/N (the report's floor)
        out[split] = rec.get(split)
    out["data_fingerprint"] = (rec.get("data") or {}).get("fingerprint")  # records before it existed: empty
    return out


def build_tables(records: List[Dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    results_rows, run_rows = [], []
    for rec in sorted(records, key=lambda r: (r["config"]["sweep"]["name"], r.get("started_at") or "", r["run_key"])):
        cols = run_columns(rec)
        run_rows.append({**cols, **run_summary(rec)})
        for m in rec.get("metrics") or []:
            # the epoch's lr (after schedule and batch scaling) is `epoch_lr`, so it cannot overwrite the `lr` factor
            results_rows.append({**cols, **{("epoch_lr" if k == "lr" else k): v for k, v in m.items()}})
    return pd.DataFrame(results_rows), pd.DataFrame(run_rows)


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def rebuild_tables(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rebuild results.csv and runs.csv (and, with pyarrow installed, results.parquet and runs.parquet) from every
    record in out_dir (atomic writes: a partial sweep always has consistent tables)."""
    results, runs = build_tables(load_records(out_dir))
    atomic_write_text(Path(out_dir) / "results.csv", _csv(results))
    atomic_write_text(Path(out_dir) / "runs.csv", _csv(runs))
    if parquet.available():  # typed copies for pandas/Arrow users (bnablate[parquet]); the CSVs stay the default
        parquet.write_parquet(results, Path(out_dir) / "results.parquet")
        parquet.write_parquet(runs, Path(out_dir) / "runs.parquet")
    return results, runs
