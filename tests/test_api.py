"""The Python API a notebook uses: bnablate.sweep / run / report / load_results (the CLI calls the same functions)."""

import json

import pandas as pd
import pytest

import bnablate
from bnablate.train import ConfigError

SMALL = ["dataset=synthetic", "model=mlp", "train.epochs=1"]


def test_sweep_run_report_load_results_from_python(tmp_path):
    out = tmp_path / "nb"
    runs = bnablate.sweep([*SMALL, "variant=no_bn,bn_pre_act", "seed=range(2)"], out_dir=out)
    assert isinstance(runs, pd.DataFrame) and len(runs) == 4
    assert sorted(runs["variant"]) == ["bn_pre_act", "bn_pre_act", "no_bn", "no_bn"]
    assert (runs["status"] == "ok").all() and runs["final_test_acc"].between(0, 1).all()
    # the returned frame is the folder's runs.csv, rebuilt from the records written as each run ended
    on_disk = pd.read_csv(out / "runs.csv")
    assert sorted(on_disk["run_key"]) == sorted(runs["run_key"])
    assert sorted(p.stem for p in (out / "records").glob("*.json")) == sorted(runs["run_key"])
    loaded = bnablate.load_results(out)
    pd.testing.assert_frame_equal(loaded.sort_values("run_key").reset_index(drop=True),
                                  runs.sort_values("run_key").reset_index(drop=True))
    assert len(bnablate.load_results(out, per_epoch=True)) == 4  # one epoch each

    again = bnablate.sweep([*SMALL, "variant=no_bn,bn_pre_act", "seed=range(2)"], out_dir=out)  # resumes: nothing new
    assert sorted(again["run_key"]) == sorted(runs["run_key"])
    assert list(again["finished_at"].sort_values()) == list(runs["finished_at"].sort_values())

    report = bnablate.report(out, baseline="no_bn", formats=["csv", "md"])
    assert set(report.summary["variant"]) == {"no_bn", "bn_pre_act"}
    assert sorted(p.name for p in report.files) == ["comparisons.csv", "summary.csv", "summary.md"]
    assert all(p.exists() for p in report.files)


def test_run_returns_its_record_and_skips_a_recorded_run(tmp_path):
    rec = bnablate.run([*SMALL, "variant=bn_post_act"], out_dir=tmp_path / "one")
    assert rec["status"] == "ok" and rec["variant"] == "bn_post_act" and len(rec["metrics"]) == 1
    on_disk = json.loads((tmp_path / "one" / "records" / f"{rec['run_key']}.json").read_text())
    assert on_disk["metrics"] == rec["metrics"]
    again = bnablate.run([*SMALL, "variant=bn_post_act"], out_dir=tmp_path / "one")
    assert again.get("skipped") and again["run_key"] == rec["run_key"]


def test_api_errors_name_the_fix_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="train.epochs must be ≥ 1"):
        bnablate.sweep([*SMALL, "train.epochs=0"], out_dir=tmp_path / "bad")
    with pytest.raises(ValueError, match="holds no run records"):
        bnablate.report(tmp_path / "nothing")
    with pytest.raises(ValueError, match="holds no run records"):
        bnablate.load_results(tmp_path / "nothing")
    assert not (tmp_path / "bad").exists()


def test_a_failing_run_is_a_row_not_an_exception(tmp_path, monkeypatch):
    import bnablate.sweeps as sweeps

    real = sweeps.run_experiment

    def flaky(cfg, on_epoch=None, data=None, **kwargs):
        if cfg.seed == 1:
            raise RuntimeError("simulated crash")
        return real(cfg, on_epoch, data, **kwargs)
    monkeypatch.setattr(sweeps, "run_experiment", flaky)
    runs = bnablate.sweep([*SMALL, "variant=no_bn", "seed=range(2)"], out_dir=tmp_path / "f")
    assert sorted(runs["status"]) == ["failed", "ok"]
    assert "simulated crash" in runs.loc[runs["status"] == "failed", "error"].iloc[0]


def test_plan_describes_a_sweep_without_training(tmp_path):
    plan = bnablate.plan([*SMALL, "variant=no_bn,bn_pre_act", "seed=range(3)"], out_dir=tmp_path / "p")
    assert len(plan.jobs) == len(set(plan.keys)) == 6 and plan.launcher == "basic"
    assert plan.out_dirs == [tmp_path / "p"] and plan.finished_count() == 0
    assert not (tmp_path / "p").exists()


def test_ctrl_c_between_a_record_and_its_tables_still_leaves_tables_that_match(tmp_path, monkeypatch):
    """An interrupt right after a record is written (before the sweep rebuilt its tables): the API rebuilds them from
    every record kept before it re-raises, so runs.csv lists exactly the finished runs."""
    import bnablate.sweeps as sweeps

    def interrupted(out_dir):
        raise KeyboardInterrupt
    monkeypatch.setattr(sweeps, "rebuild_tables", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bnablate.sweep([*SMALL, "variant=no_bn", "seed=range(2)"], out_dir=tmp_path / "c")
    records = list((tmp_path / "c" / "records").glob("*.json"))
    assert len(records) == 1 and len(pd.read_csv(tmp_path / "c" / "runs.csv")) == 1
