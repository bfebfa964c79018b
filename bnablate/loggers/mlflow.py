"""MLflow backend: one MLflow run per bnablate run, created when it starts and fed each epoch's metrics as it trains
(status RUNNING), then its params, the record as an artifact and its status (FINISHED / FAILED) when it ends."""

from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig

from ..errors import ConfigError
from ..results.tables import flatten
from . import epoch_scalars, factors, register_logger

MAX_PARAM = 6000  # MLflow's param value length limit (6000 chars since 2.x)


def check(cfg: DictConfig) -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("logger=mlflow needs the mlflow package: pip install 'bnablate[mlflow]' "
                          "(or choose logger=none).") from None
    uri = str(cfg.logger.mlflow.tracking_uri)
    try:
        _store(uri, str(cfg.sweep.name), str(cfg.out_dir))
    except Exception as e:  # noqa: BLE001  (any store error: bad scheme, unwritable path)
        raise ConfigError(f"logger.mlflow.tracking_uri={uri} cannot be opened ({type(e).__name__}: {e}); give a "
                          f"writable store, e.g. logger.mlflow.tracking_uri=sqlite:///PATH/mlflow.db.") from None


@lru_cache(maxsize=None)  # validate_config runs for every job of a sweep (planning, preflight, training): open once
def _store(uri: str, name: str, out_dir: str):
    """(client, experiment id) of the sweep's experiment in the store at uri, created if absent."""
    from mlflow.tracking import MlflowClient
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp:
        return client, exp.experiment_id
    # A local database store would put artifacts in ./mlruns of whatever folder the command ran in; keep them beside
    # the store, in the run folder. A remote tracking server decides its own artifact location.
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    artifacts = (Path(out_dir) / "mlartifacts").resolve().as_uri() if local else None
    return client, client.create_experiment(name, artifact_location=artifacts)


def _experiment(cfg: DictConfig):
    """(client, experiment id) for a run's config."""
    return _store(str(cfg.logger.mlflow.tracking_uri), str(cfg.sweep.name), str(cfg.out_dir))


class Live:
    """One bnablate run as one MLflow run, open (RUNNING) while it trains."""

    def __init__(self, cfg: DictConfig, key: str, label: str) -> None:
        self.client, exp = _experiment(cfg)
        for old in self.client.search_runs([exp], filter_string=f"tags.`bnablate.run_key` = '{key}'"):
            self.client.delete_run(old.info.run_id)  # a re-run (after a failure, Ctrl-C, --force) replaces it
        self.key = key
        self.rid = self.client.create_run(exp, run_name=label, tags={"bnablate.run_key": key,
                                                                     "bnablate.status": "running"}).info.run_id

    def epoch(self, row: Dict[str, Any]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(k, v, 0, int(row["epoch"])) for k, v in epoch_scalars(row).items()]
        self.client.log_batch(self.rid, metrics=metrics, params=[], tags=[])

    def finish(self, record: Dict[str, Any]) -> None:
        from mlflow.entities import Param, RunTag

        params = {**{k: str(v)[:MAX_PARAM] for k, v in flatten(record["config"]).items()},
                  **{f"factor.{k}": str(v) for k, v in factors(record).items()}}
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # log_batch takes at most 100 params per call
            self.client.log_batch(self.rid, metrics=[], params=items[i:i + 100], tags=[])
        self.client.log_batch(self.rid, tags=[RunTag("bnablate.status", str(record.get("status")))])
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / f"{self.key}.json"
            p.write_text(json.dumps(record, indent=1, default=str))
            self.client.log_artifact(self.rid, str(p))
        self.client.set_terminated(self.rid, "FINISHED" if record.get("status") == "ok" else "FAILED")


register_logger("mlflow", check, Live)


def log_report(records, files) -> None:
    """The report's files (figures, tables, index.html) as artifacts of one MLflow run per sweep named `report`
    (tag bnablate.kind=report), in the store the sweep's runs chose; a newer report replaces the older run. records:
    those that chose MLflow."""
    from omegaconf import OmegaConf
    for sweep in sorted({r["config"]["sweep"]["name"] for r in records}):
        cfg = OmegaConf.create(next(r["config"] for r in records if r["config"]["sweep"]["name"] == sweep))
        client, exp = _experiment(cfg)
        for old in client.search_runs([exp], filter_string="tags.`bnablate.kind` = 'report'"):
            client.delete_run(old.info.run_id)
        rid = client.create_run(exp, run_name="report", tags={"bnablate.kind": "report"}).info.run_id
        for path in files:
            client.log_artifact(rid, str(path), artifact_path="report")
        client.set_terminated(rid, "FINISHED")
