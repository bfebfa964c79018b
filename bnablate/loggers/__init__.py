"""Trackers a finished run's record is also logged to (TensorBoard, MLflow): a small registry and one log_record path."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from omegaconf import DictConfig

from ..errors import ConfigError

# name -> (check(cfg) raising ConfigError before training, log(cfg, record) after the record is written)
LOGGERS: Dict[str, tuple] = {}


def register_logger(name: str, check: Callable[[DictConfig], None], log: Callable[[DictConfig, Dict[str, Any]], None]):
    LOGGERS[name] = (check, log)


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


def log_record(cfg: DictConfig, record: Dict[str, Any]) -> None:
    """Log one finished (ok, failed or diverged) run's record to every chosen tracker; skipped runs are not logged."""
    if record.get("skipped"):
        return
    for n in chosen(cfg):
        LOGGERS[n][1](cfg, record)


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
