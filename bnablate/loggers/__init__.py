"""Trackers each run is also logged to (TensorBoard, MLflow), streamed as it trains: a small registry of backends, each
a `live(cfg, key, label)` handle with `epoch(row)` after every epoch and `finish(record)` once its record is written."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Optional, Protocol

from omegaconf import DictConfig

from ..errors import ConfigError


class LiveHandle(Protocol):
    """One run in one tracker, opened before its first epoch."""

    def epoch(self, row: Dict[str, Any]) -> None: ...

    def finish(self, record: Dict[str, Any]) -> None: ...


# name -> (check(cfg) raising ConfigError before training, live(cfg, run key, run label) -> LiveHandle)
LOGGERS: Dict[str, tuple] = {}


def register_logger(name: str, check: Callable[[DictConfig], None],
                    live: Callable[[DictConfig, str, str], LiveHandle]) -> None:
    LOGGERS[name] = (check, live)


def chosen(cfg: DictConfig) -> List[str]:
    """The trackers cfg.logger.backends names (empty for logger=none)."""
    names = list(cfg.logger.backends)
    for n in names:
        if n not in LOGGERS:
            raise ConfigError(f"Unknown logger {n!r}; choose from {sorted(LOGGERS)} (conf/logger: none, tensorboard, "
                              f"mlflow, both).")
    return names


def check_loggers(cfg: DictConfig) -> None:
    """Raise ConfigError (naming the fix) when a chosen tracker cannot start: called before any training."""
    for n in chosen(cfg):
        LOGGERS[n][0](cfg)


class LiveLog:
    """A run's handles in every chosen tracker: opened before training, fed each epoch's row as it ends (a long run's
    curves are visible while it trains), finished with the written record (status, params, the record itself). A
    tracker that fails mid-run warns once and is dropped for that run: it never fails the training."""

    def __init__(self, cfg: DictConfig, key: str, label: str) -> None:
        self.handles: Dict[str, Optional[LiveHandle]] = {}
        for name in chosen(cfg):
            try:
                self.handles[name] = LOGGERS[name][1](cfg, key, label)
            except Exception as e:  # noqa: BLE001  (checked before training; a store gone since is not the run's fault)
                self._drop(name, e)

    def _drop(self, name: str, e: Exception) -> None:
        warnings.warn(f"logger {name}: {type(e).__name__}: {e}; this run is not logged there (its record and the "
                      f"tables are unaffected).", stacklevel=3)
        self.handles[name] = None

    def _each(self, what: str, arg: Dict[str, Any]) -> None:
        for name, handle in self.handles.items():
            if handle is None:
                continue
            try:
                getattr(handle, what)(arg)
            except Exception as e:  # noqa: BLE001  (a tracker's outage is not the run's failure)
                self._drop(name, e)

    def epoch(self, row: Dict[str, Any]) -> None:
        self._each("epoch", row)

    def finish(self, record: Dict[str, Any]) -> None:
        self._each("finish", record)


def live_log(cfg: DictConfig, key: str, variant: str) -> LiveLog:
    """The handles of a run about to train (no handle at all under logger=none)."""
    return LiveLog(cfg, key, run_label({"variant": variant, "config": {"seed": cfg.seed}, "run_key": key}))


def log_report_to_trackers(records: List[Dict[str, Any]], files: List[Any]) -> None:
    """A report's files to the trackers its runs chose (MLflow: a `report` run per sweep; TensorBoard shows no
    files, so nothing there). Records written before loggers existed chose none."""
    logged = [r for r in records if "mlflow" in r["config"].get("logger", {}).get("backends", [])]
    if logged:
        _mlflow.log_report(logged, files)


def run_label(record: Dict[str, Any]) -> str:
    """Unique, filesystem-safe name of a run: variant, seed and the run key."""
    seed = record.get("config", {}).get("seed", "")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(record.get("variant", "run")))
    return f"{safe}-s{seed}-{record['run_key']}"


def factors(record: Dict[str, Any]) -> Dict[str, Any]:
    """The run's factors (variant axes, model, dataset, seed, optimizer) as flat scalars for hparams/params."""
    c = record.get("config", {})
    out: Dict[str, Any] = {"variant": record.get("variant"), "model": c.get("model", {}).get("name"),
                           "dataset": c.get("dataset", {}).get("name"), "seed": c.get("seed"),
                           "optimizer": c.get("optim", {}).get("name"), "lr": c.get("optim", {}).get("lr"),
                           "batch_size": c.get("train", {}).get("batch_size")}
    for k, v in (c.get("variant") or {}).items():
        if k != "description":
            out[f"variant.{k}"] = v
    return {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in out.items()}


def epoch_scalars(row: Dict[str, Any]) -> Dict[str, float]:
    """A per-epoch row's numeric metrics (epoch itself excluded)."""
    return {k: float(v) for k, v in row.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}


from . import mlflow as _mlflow, tensorboard as _tensorboard  # noqa: E402,F401  (register the backends)
