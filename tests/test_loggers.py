"""Trackers: TensorBoard event files and the MLflow store read back equal each run's record; none changes nothing."""

import json

import pytest

import bnablate
from bnablate.errors import ConfigError

FAST = ["dataset=digits", "train.epochs=2", "model=mlp"]


def _records(out):
    return {r["run_key"]: r for r in (json.loads(p.read_text()) for p in (out / "records").glob("*.json"))}


def test_tensorboard_scalars_equal_record(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    bnablate.run(FAST + ["logger=tensorboard"], out_dir=tmp_path)
    (rec,) = _records(tmp_path).values()
    (run_dir,) = (tmp_path / "tb").iterdir()
    assert rec["run_key"] in run_dir.name
    ea = EventAccumulator(str(run_dir))
    ea.Reload()
    for name in ("train_loss", "val_acc", "test_acc"):
        got = [(e.step, e.value) for e in ea.Scalars(name)]
        assert got == [(r["epoch"], pytest.approx(r[name], rel=1e-6)) for r in rec["metrics"]]
    assert any(t.startswith("hparam/") for t in ea.Tags()["scalars"])


def test_mlflow_run_per_record_and_force_replaces(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    uri = f"sqlite:///{tmp_path}/ml.db"
    args = FAST + ["logger=mlflow", f"logger.mlflow.tracking_uri={uri}"]
    bnablate.run(args, out_dir=tmp_path)
    bnablate.run(args, out_dir=tmp_path)  # skipped: not logged again
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("placement")
    runs = client.search_runs([exp.experiment_id])
    (rec,) = _records(tmp_path).values()
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["bnablate.run_key"] == rec["run_key"] and run.data.tags["bnablate.status"] == rec["status"]
    hist = client.get_metric_history(run.info.run_id, "test_acc")
    assert [(m.step, m.value) for m in hist] == [(r["epoch"], pytest.approx(r["test_acc"])) for r in rec["metrics"]]
    assert run.data.params["factor.seed"] == "0"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == [f"{rec['run_key']}.json"]
    bnablate.run(args, out_dir=tmp_path, force=True)
    runs2 = client.search_runs([exp.experiment_id])
    assert len(runs2) == 1 and runs2[0].info.run_id != run.info.run_id


def test_unwritable_mlflow_uri_is_config_error(tmp_path):
    pytest.importorskip("mlflow")
    with pytest.raises(ConfigError, match="tracking_uri"):
        bnablate.run(FAST + ["logger=mlflow", "logger.mlflow.tracking_uri=nosuchscheme://x"], out_dir=tmp_path)
    assert not (tmp_path / "records").exists() or not list((tmp_path / "records").glob("*.json"))


def test_logger_none_leaves_keys_and_tables(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    bnablate.run(FAST, out_dir=a)
    bnablate.run(FAST + ["logger=tensorboard", f"logger.tensorboard.log_dir={tmp_path}/tb"], out_dir=b)
    assert set(_records(a)) == set(_records(b))
    for t in ("runs.csv", "results.csv"):
        assert (a / t).read_text().splitlines()[0] == (b / t).read_text().splitlines()[0]
    assert not (a / "tb").exists() and not (a / "mlflow.db").exists()
