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


def test_mlflow_packed_runs_log_as_k_runs_with_artifacts_in_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/ml.db"
    out = tmp_path / "runs" / "packed"
    bnablate.sweep(FAST + ["logger=both", f"logger.mlflow.tracking_uri={uri}", "pack=true", "seed=range(2)", "variant=bn_pre_act",
                           f"out_dir={out}"])
    recs = _records(out)
    assert len(recs) == 2 and all(r["pack_size"] == 2 for r in recs.values())
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("placement").experiment_id])
    assert sorted(r.data.tags["bnablate.run_key"] for r in runs) == sorted(recs)
    for r in runs:  # each run's own curve, not the pack's first run's
        hist = client.get_metric_history(r.info.run_id, "train_loss")
        want = recs[r.data.tags["bnablate.run_key"]]["metrics"]
        assert [m.value for m in hist] == pytest.approx([m["train_loss"] for m in want])
        assert r.info.artifact_uri.startswith((out / "mlartifacts").as_uri())
    assert not (tmp_path / "mlruns").exists()
    assert len(list((out / "tb").iterdir())) == 2


def test_failed_run_is_logged_with_its_status(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    import bnablate.sweeps as sweeps

    def boom(*a, **k):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(sweeps, "run_experiment", boom)
    bnablate.run(FAST + ["logger=tensorboard"], out_dir=tmp_path)
    (rec,) = _records(tmp_path).values()
    assert rec["status"] == "failed"
    (run_dir,) = (tmp_path / "tb").iterdir()
    ea = EventAccumulator(str(run_dir))
    ea.Reload()
    assert ea.Tags()["scalars"] == [] or all(t.startswith("hparam/") for t in ea.Tags()["scalars"])


def test_unwritable_tensorboard_dir_and_missing_library_are_config_errors(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="log_dir"):
        bnablate.run(FAST + ["logger=tensorboard", f"logger.tensorboard.log_dir={blocker}/tb"], out_dir=tmp_path)
    import builtins
    real = builtins.__import__

    def no_mlflow(name, *a, **k):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(ConfigError, match=r"pip install 'bnablate\[mlflow\]'"):
        bnablate.run(FAST + ["logger=mlflow"], out_dir=tmp_path / "x")
    assert not (tmp_path / "x" / "records").exists() or not list((tmp_path / "x" / "records").glob("*.json"))


def test_report_figures_go_to_mlflow_as_a_report_run(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    uri = f"sqlite:///{tmp_path}/ml.db"
    out = tmp_path / "runs" / "rep"
    bnablate.sweep(FAST + ["logger=mlflow", f"logger.mlflow.tracking_uri={uri}", "variant=no_bn,bn_pre_act",
                           "seed=range(2)", f"out_dir={out}"])
    for _ in range(2):  # a second report replaces the first
        rep = bnablate.report(out)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("placement").experiment_id
    (run,) = client.search_runs([exp], filter_string="tags.`bnablate.kind` = 'report'")
    names = {a.path.split("/")[-1] for a in client.list_artifacts(run.info.run_id, "report")}
    assert {p.name for p in rep.files} == names and any(n.endswith(".png") for n in names)
    assert len(client.search_runs([exp])) == 4 + 1  # 4 runs + the report


def test_trackers_show_each_epoch_while_the_run_trains(tmp_path):
    """Streaming: when epoch 1 of 3 ends, TensorBoard's event file and the MLflow run (RUNNING) already hold its
    metrics; at the end both hold all three epochs and MLflow says FINISHED."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bnablate.sweeps import Reporter

    uri, tb = f"sqlite:///{tmp_path}/ml.db", tmp_path / "tb"
    seen = {}

    class Peek(Reporter):
        def epoch_done(self, row):
            if row["epoch"] == 1:
                run_dir = next(tb.iterdir())
                ea = EventAccumulator(str(run_dir))
                ea.Reload()
                seen["tb"] = [e.value for e in ea.Scalars("val_acc")]
                client = MlflowClient(uri)
                run = client.search_runs([client.get_experiment_by_name("placement").experiment_id])[0]
                seen["mlflow"] = ([m.value for m in client.get_metric_history(run.info.run_id, "val_acc")],
                                  run.info.status)

    rec = bnablate.run(["dataset=digits", "train.epochs=3", "model=mlp", "logger=both",
                        f"logger.mlflow.tracking_uri={uri}", f"logger.tensorboard.log_dir={tb}"],
                       out_dir=tmp_path / "out", reporter=Peek())
    first = rec["metrics"][0]["val_acc"]
    assert seen["tb"] == pytest.approx([first]) and seen["mlflow"] == (pytest.approx([first]), "RUNNING")
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("placement").experiment_id])[0]
    assert len(client.get_metric_history(run.info.run_id, "val_acc")) == 3 and run.info.status == "FINISHED"
