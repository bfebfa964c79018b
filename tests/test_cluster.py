"""Cluster launchers: the SLURM preset composes onto Hydra's submitit plugin; submitit_local runs a sweep end to end."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import compose_config

SWEEP = ["sweep", "dataset=synthetic", "model=mlp", "variant=no_bn,bn_pre_act", "seed=0", "train.epochs=1",
         "out_dir=runs/cluster"]


def test_slurm_preset_extends_the_submitit_plugin_and_takes_overrides():
    cfg = compose_config(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30",
                          "hydra.launcher.array_parallelism=8"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")  # the plugin's schema, not a copy of it
    assert (launcher.partition, launcher.timeout_min, launcher.array_parallelism) == ("gpu", 30, 8)
    assert (launcher.cpus_per_task, launcher.gpus_per_node, launcher.mem_gb, launcher.name) == (4, 1, 16, "bnablate")
    assert launcher.submitit_folder == "runs/placement/.submitit/%j"  # job logs beside the records, out of records/


@pytest.mark.slow  # submitit jobs in subprocesses
def test_submitit_local_runs_the_sweep_as_jobs_and_a_rerun_skips_them():
    cmd = SWEEP + ["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=5"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, result.output
    assert "launcher submitit_local" in result.output and "final_test_acc" in result.output
    recs = [json.loads(p.read_text()) for p in Path("runs/cluster/records").glob("*.json")]
    assert sorted(r["config"]["variant"]["norm"] for r in recs) == ["batch", "none"]
    prov = [r["provenance"] for r in recs]
    # trained in submitit's job processes, one torch thread each (cpus_per_task), not in the test process
    assert {p["submitit_executor"] for p in prov} == {"local"} and {p["torch_threads"] for p in prov} == {1}
    assert len({p["submitit_local_job_id"] for p in prov}) == 2
    assert all(r["status"] == "ok" for r in recs)
    assert list(Path("runs/cluster/.submitit").iterdir())  # submitit's per-job logs
    again = CliRunner().invoke(app, cmd)
    assert again.exit_code == 0 and "2 already completed there" in again.output
    assert len(list(Path("runs/cluster/records").glob("*.json"))) == 2
