"""MLflow backend: one MLflow run per bnablate run (params, per-epoch metrics, run key/status tags, the record)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig

from ..errors import ConfigError
from . import epoch_scalars, factors, register_logger, run_label

MAX_PARAM = 6000  # MLflow's param value length limit (6000 chars since 2.x)


def check(cfg: DictConfig) -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("logger=mlflow needs the mlflow package: pip install 'bnablate[mlflow]' "
                          "(or choose logger=none).") from None
    uri = str(cfg.logger.mlflow.tracking_uri)
    try:
        _experiment(cfg)
    except Exception as e:  # noqa: BLE001  (any store error: bad scheme, unwritable path)
        raise ConfigError(f"logger.mlflow.tracking_uri={uri} cannot be opened ({type(e).__name__}: {e}); give a "
                          f"writable store, e.g. logger.mlflow.tracking_uri=sqlite:///PATH/mlflow.db.") from None


def _client(cfg: DictConfig):
    from mlflow.tracking import MlflowClient
    uri = str(cfg.logger.mlflow.tracking_uri)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def _experiment(cfg: DictConfig) -> str:
    client = _client(cfg)
    name = str(cfg.sweep.name)
    exp = client.get_experiment_by_name(name)
    if exp:
        return exp.experiment_id
    # A local database store would put artifacts in ./mlruns of whatever folder the command ran in; keep them beside
    # the store, in the run folder. A remote tracking server decides its own artifact location.
    uri = str(cfg.logger.mlflow.tracking_uri)
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    artifacts = (Path(str(cfg.out_dir)) / "mlartifacts").resolve().as_uri() if local else None
    return client.create_experiment(name, artifact_location=artifacts)


def _flat(d: Any, prefix: str = "") -> Dict[str, str]:
    if isinstance(d, dict):
        out: Dict[str, str] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: str(d)[:MAX_PARAM]}


def log(cfg: DictConfig, record: Dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param, RunTag
    client, exp = _client(cfg), _experiment(cfg)
    key = record["run_key"]
    for old in client.search_runs([exp], filter_string=f"tags.`bnablate.run_key` = '{key}'"):
        client.delete_run(old.info.run_id)  # a --force re-run replaces the earlier MLflow run
    run = client.create_run(exp, run_name=run_label(record),
                            tags={"bnablate.run_key": key, "bnablate.status": str(record.get("status"))})
    rid = run.info.run_id
    params = {**_flat(record.get("config", {})), **{f"factor.{k}": str(v) for k, v in factors(record).items()}}
    metrics = [Metric(k, v, 0, int(row["epoch"])) for row in record.get("metrics") or []
               for k, v in epoch_scalars(row).items()]
    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, max(len(items), len(metrics), 1), 100):  # log_batch takes at most 100 params per call
        client.log_batch(rid, metrics=metrics[i:i + 100], params=items[i:i + 100], tags=[])
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"{key}.json"
        p.write_text(json.dumps(record, indent=1, default=str))
        client.log_artifact(rid, str(p))
    client.set_terminated(rid, "FINISHED" if record.get("status") == "ok" else "FAILED")


register_logger("mlflow", check, log)


def log_report(records, files) -> None:
    """The report's files (figures, tables, index.html) as artifacts of one MLflow run per sweep named `report`
    (tag bnablate.kind=report), in the store the sweep's runs chose; a newer report replaces the older run."""
    from omegaconf import OmegaConf
    chose = [r for r in records if "mlflow" in ((r.get("config") or {}).get("logger") or {}).get("backends", [])]
    for sweep in sorted({r["config"]["sweep"]["name"] for r in chose}):
        cfg = OmegaConf.create(next(r["config"] for r in chose if r["config"]["sweep"]["name"] == sweep))
        client, exp = _client(cfg), _experiment(cfg)
        for old in client.search_runs([exp], filter_string="tags.`bnablate.kind` = 'report'"):
            client.delete_run(old.info.run_id)
        rid = client.create_run(exp, run_name="report", tags={"bnablate.kind": "report"}).info.run_id
        for path in files:
            client.log_artifact(rid, str(path), artifact_path="report")
        client.set_terminated(rid, "FINISHED")
