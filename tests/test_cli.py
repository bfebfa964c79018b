"""The CLI end to end through Typer's CliRunner: list, inspect, run, sweep (with resume), and usage errors."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bnablate.cli import app

from .fixtures import use_conf_copy

runner = CliRunner()
SMALL = ["model=mlp", "train.epochs=2", "train.batch_size=32"]


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False, terminal_width=200)


def test_list_shows_every_registry():
    res = invoke("list")
    assert res.exit_code == 0
    for name in ("bn_pre_act", "bn_post_pool", "scratch_bn_pre_act", "lenet", "cnn", "digits", "cifar10",
                 "placement", "post_pool", "dropout_then_norm"):
        assert name in res.output, name
    assert "base_variant" not in res.output
    only = invoke("list", "models")
    assert "lenet" in only.output and "bn_pre_act" not in only.output


def test_list_unknown_table_is_a_usage_error():
    res = invoke("list", "modles")
    assert res.exit_code == 2 and "Unknown list 'modles'" in res.output


def test_inspect_prints_layer_stack_and_params():
    res = invoke("inspect", "model=lenet", "dataset=mnist", "variant=bn_post_pool")
    assert res.exit_code == 0, res.output
    out = res.output
    assert "conv1.pool" in out and "conv1.norm" in out and out.index("conv1.pool") < out.index("conv1.norm")
    assert "16×5×5" in out and "total trainable parameters: 62,158" in out


def test_run_prints_epochs_and_writes_record():
    res = invoke("run", "dataset=synthetic", *SMALL)
    assert res.exit_code == 0, res.output
    assert "train_loss" in res.output and "status ok" in res.output
    records = list(Path("runs/run/records").glob("*.json"))
    assert len(records) == 1
    rec = json.loads(records[0].read_text())
    assert rec["config"]["dataset"]["name"] == "synthetic" and len(rec["metrics"]) == 2
    for key in ("torch", "python", "hostname", "cpu", "device", "bnablate"):
        assert key in rec["provenance"]
    again = invoke("run", "dataset=synthetic", *SMALL)
    assert "already recorded" in again.output


def test_sweep_end_to_end_on_digits_then_resume():
    args = ["sweep", *SMALL, "variant=no_bn,bn_pre_act", "seed=range(2)", "out_dir=runs/t"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert "sweep: 4 runs" in res.output and "final_test_acc (%) by dataset, model, variant" in res.output
    assert Path("runs/t/report/summary.md").is_file()
    runs = pd.read_csv("runs/t/runs.csv")
    assert len(runs) == 4 and set(runs["variant"]) == {"no_bn", "bn_pre_act"} and set(runs["seed"]) == {0, 1}
    assert (runs["dataset"] == "digits").all() and (runs["status"] == "ok").all()
    assert len(pd.read_csv("runs/t/results.csv")) == 8
    again = invoke(*args)
    assert again.exit_code == 0 and "4 already completed" in again.output
    assert len(pd.read_csv("runs/t/runs.csv")) == 4
    assert len(list(Path("runs/t/records").glob("*.json"))) == 4


def test_sweep_keeps_going_after_a_failing_run(monkeypatch):
    import bnablate.sweeps as sweep

    real = sweep.run_experiment

    def flaky(cfg, on_epoch=None, data=None, **kwargs):
        if cfg.seed == 1:
            raise RuntimeError("simulated crash")
        return real(cfg, on_epoch, data, **kwargs)
    monkeypatch.setattr(sweep, "run_experiment", flaky)
    # pack=false: the crash is simulated in the lone-run path (an MLP at batch 32 packs on a CPU)
    res = invoke("sweep", *SMALL, "variant=no_bn", "seed=range(3)", "out_dir=runs/f", "pack=false")
    assert res.exit_code == 1
    assert "simulated crash" in res.output and "1 run(s) failed" in res.output
    runs = pd.read_csv("runs/f/runs.csv")
    assert sorted(runs["status"]) == ["failed", "ok", "ok"]
    monkeypatch.setattr(sweep, "run_experiment", real)
    res = invoke("sweep", *SMALL, "variant=no_bn", "seed=range(3)", "out_dir=runs/f", "pack=false")
    assert res.exit_code == 0 and "2 already completed" in res.output
    assert sorted(pd.read_csv("runs/f/runs.csv")["status"]) == ["ok", "ok", "ok"]


@pytest.mark.parametrize("args,msg", [
    (["run", "variant=bn_pre_actt"], "Unknown variant 'bn_pre_actt'. Did you mean 'bn_pre_act'?"),
    (["run", "model=lenett"], "Did you mean 'lenet'?"),
    (["run", "dataset=fashion_mnsit"], "Did you mean 'fashion_mnist'?"),
    (["sweep", "sweep=placment"], "Did you mean 'placement'?"),
    (["run", "model.hiddn=[3]", "model=mlp"], "Unknown config key 'model.hiddn'. Did you mean 'model.hidden'?"),
    (["run", "optim.lr=abc"], "optim.lr"),
    (["run", "variant.norm=btach"], "Did you mean 'batch'?"),
    (["run", "train.batch_size=1"], "batch_size=1 with batch normalization"),
    (["run", "variant=gn8_pre_act"], "6 channels, 8 groups"),
    (["run", "variant=a,b"], "sweep"),
    (["run", "seed=["], "Malformed override"),
    (["sweep", "train.epochs=0"], "epochs must be ≥ 1"),
    (["sweep", "variant=no_bn,bn_pre_actt"], "Did you mean 'bn_pre_act'?"),
    (["run", "dataset=mnist"], "MNIST"),
    (["sweep", "dataset=mnist"], "MNIST"),
    (["sweep", "seed=range(0)"], "The sweep is empty"),
    (["sweep", "train.batch_size=100000"], "larger than the training set"),
    (["run", "train.batch_size=100000", "model=mlp"], "larger than the training set"),
    (["sweep", "optim.lr=0"], "optim.lr must be > 0, got 0.0"),
    (["sweep", "optim.lr=-1", "model=mlp"], "optim.lr must be > 0, got -1.0"),
    (["sweep", "variant=bn_dropout", "variant.dropout_p=1.5"], "variant.dropout_p must be in [0, 1), got 1.5"),
    (["sweep", "train.epochs=two"], "Invalid value for 'train.epochs'"),
    (["sweep", "hydra/launcher=slrum"], "Unknown hydra/launcher 'slrum'. Did you mean 'slurm'?"),
    (["sweep", "pack_size=0"], "pack_size must be auto or an integer ≥ 1"),
    (["run", "device=tpu"], "Unknown device 'tpu'"),
])
def test_bad_inputs_are_usage_errors_without_traceback(args, msg):
    res = runner.invoke(app, args, terminal_width=200)
    assert res.exit_code == 2, res.output
    assert msg in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output
    assert not Path("runs").exists()


@pytest.mark.slow
def test_default_sweep_end_to_end():
    """`bnablate sweep` with no arguments: the placement preset on digits, every run finishes and learns."""
    res = invoke("sweep")
    assert res.exit_code == 0, res.output
    runs = pd.read_csv("runs/placement/runs.csv")
    assert len(runs) == 24 and (runs["status"] == "ok").all()
    assert runs["variant"].nunique() == 8 and set(runs["seed"]) == {0, 1, 2}
    assert (runs.groupby("variant")["final_test_acc"].mean() > 0.9).all()


def test_sweep_packs_seeds_when_asked():
    args = ["sweep", *SMALL, "variant=no_bn,bn_dropout", "seed=range(3)", "pack=true", "out_dir=runs/p"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert "[6/6]" in res.output and "[7/" not in res.output  # packed runs are counted once
    runs = pd.read_csv("runs/p/runs.csv")
    assert len(runs) == 6 and (runs["status"] == "ok").all()
    # no_bn's three seeds trained as one pack; bn_dropout cannot be packed (dropout) and ran one by one
    assert set(runs[runs["variant"] == "no_bn"]["pack_size"]) == {3}
    assert set(runs[runs["variant"] == "bn_dropout"]["pack_size"]) == {1}
    again = invoke(*args)
    assert "6 already completed" in again.output


def test_sweep_loads_each_dataset_once(monkeypatch):
    """The checks, the pack and the runs of one sweep share one load of its dataset (one per distinct dataset)."""
    import bnablate.sweep_plan
    import bnablate.train.runner

    calls = []
    real = bnablate.sweep_plan.load_data
    monkeypatch.setattr(bnablate.sweep_plan, "load_data", lambda cfg: calls.append(cfg.name) or real(cfg))
    monkeypatch.setattr(bnablate.train.runner, "load_data", lambda cfg: pytest.fail("a run loaded its data again"))
    res = invoke("sweep", *SMALL, "variant=no_bn,bn_dropout", "seed=range(2)", "pack=true", "out_dir=runs/once")
    assert res.exit_code == 0, res.output
    assert calls == ["digits"] and len(pd.read_csv("runs/once/runs.csv")) == 4


def test_sweep_dry_run_prints_the_plan_and_trains_nothing():
    args = ["sweep", *SMALL, "variant=no_bn,bn_dropout", "seed=range(3)", "pack=true", "pack_size=2",
            "out_dir=runs/dry", "--dry-run"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert "6 job(s) under the basic launcher into runs/dry" in res.output
    assert "pack of 2 (pack=true; pack_size=2): variant=no_bn seed=0; variant=no_bn seed=1" in res.output
    assert "1 alone (left over after packs of 2 (pack_size=2)): variant=no_bn seed=2" in res.output
    assert "3 alone (dropout masks are drawn per run" in res.output
    assert not Path("runs/dry").exists()
    assert invoke("sweep", *SMALL, "variant=no_bn", "seed=range(2)", "out_dir=runs/dry2").exit_code == 0
    again = invoke("sweep", *SMALL, "variant=no_bn", "seed=range(2)", "out_dir=runs/dry2", "--dry-run")
    assert "2 already finished (skipped)" in again.output


def test_a_repeated_job_is_planned_and_trained_once(monkeypatch):
    """seed=1,1 (or two spellings of one value) is one run: the plan keeps it once and says so, and the multirun's
    second expansion of it trains nothing again, not even a run that failed."""
    dry = invoke("sweep", *SMALL, "variant=no_bn,bn_pre_act", "seed=1,1", "optim.lr=0.1,1e-1", "out_dir=runs/rep",
                 "--dry-run")
    text = " ".join(dry.output.split())
    assert dry.exit_code == 0 and "2 job(s) under the basic launcher" in text, dry.output
    assert "note: 6 job(s) of the grid repeat an earlier job's run" in text and "seed=1,1 is one run" in text
    import bnablate.sweeps as sweep

    calls = []

    def crash(cfg, on_epoch=None, data=None, **kwargs):
        calls.append(int(cfg.seed))
        raise RuntimeError("simulated crash")
    monkeypatch.setattr(sweep, "run_experiment", crash)
    res = invoke("sweep", *SMALL, "variant=no_bn", "seed=1,1", "out_dir=runs/rep", "pack=false")
    assert res.exit_code == 1 and "1 run(s) failed" in res.output and "sweep: 1 runs" in res.output, res.output
    assert calls == [1]  # the repeat is not retrained after the failure


def test_pack_value_is_validated():
    res = runner.invoke(app, ["sweep", "pack=maybe"], terminal_width=200)
    assert res.exit_code == 2 and "Unknown pack 'maybe'" in res.output and "Choose one of: auto, false, true" in res.output


def test_a_config_file_that_does_not_parse_names_the_file_and_line(tmp_path, monkeypatch):
    import bnablate.variants

    conf = use_conf_copy(tmp_path, monkeypatch)  # a copy of conf/ with a broken preset, as a user adding one makes it
    (conf / "variant" / "zz_broken.yaml").write_text("defaults:\n  - base_variant\n  - _self_\nnorm: batch\n"
                                                     "placement: [pre_act\n")
    try:
        for cmd in (["run", "dataset=synthetic", "model=mlp", "variant=zz_broken"],
                    ["sweep", "dataset=synthetic", "model=mlp", "variant=zz_broken,no_bn"], ["list", "variants"]):
            result = CliRunner().invoke(app, cmd)
            assert result.exit_code == 2, result.output
            assert "does not parse as YAML" in result.output and "zz_broken.yaml" in result.output
            assert "line 5" in result.output and "Traceback" not in result.output
        assert not Path("runs").exists()
    finally:
        bnablate.variants.variant_presets.cache_clear()


def test_a_partial_variant_file_works_everywhere(tmp_path, monkeypatch):
    """A variant file that sets only what differs from the schema (Hydra's recommendation) lists, labels, runs and
    sweeps like a full one."""
    import bnablate.variants

    conf = use_conf_copy(tmp_path, monkeypatch)
    (conf / "variant" / "bn_tanh.yaml").write_text("defaults:\n  - base_variant\n  - _self_\n"
                                                   "description: BN before tanh\nactivation: tanh\n")
    try:
        listed = CliRunner().invoke(app, ["list", "variants"], terminal_width=200)
        assert listed.exit_code == 0, listed.output
        row = next(line for line in listed.output.splitlines() if "bn_tanh" in line)
        assert "batch" in row and "pre_act" in row and "tanh" in row and "BN before tanh" in row
        assert bnablate.variants.variant_label({**bnablate.variants.variant_presets().get("bn_pre_act"),
                                                "activation": "tanh"}) == "bn_tanh"
        out = tmp_path / "partial"
        res = CliRunner().invoke(app, ["sweep", "dataset=synthetic", "model=mlp", "variant=bn_tanh,no_bn",
                                       "train.epochs=1", f"out_dir={out}"], terminal_width=200)
        assert res.exit_code == 0, res.output
        runs = pd.read_csv(out / "runs.csv")
        assert set(runs["variant"]) == {"bn_tanh", "no_bn"} and (runs["status"] == "ok").all()
        tanh = runs[runs["variant"] == "bn_tanh"].iloc[0]
        assert (tanh["norm"], tanh["placement"], tanh["activation"]) == ("batch", "pre_act", "tanh")
    finally:
        bnablate.variants.variant_presets.cache_clear()


def test_a_key_of_the_model_a_grid_picks_can_be_set_on_the_command_line(tmp_path):
    """`sweep=repro_resnet model.depth=56` on the default lenet: Hydra composes its base config before the grid picks
    resnet, so the key is deferred to the jobs (hydra_adapter.defer_grid_keys) and every job gets it."""
    out = tmp_path / "rn"
    res = invoke("sweep", "dataset=synthetic", "model=choice(resnet)", "model.depth=8", "model.widths=[4,8,8]",
                 "train.epochs=1", "variant=bn_pre_act,rn_full_preact", "seed=0", f"out_dir={out}")
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["model.depth"]) == {8} and set(runs["variant"]) == {"bn_pre_act", "rn_full_preact"}
    bad = runner.invoke(app, ["sweep", "dataset=synthetic", "model.depth=8", "--dry-run"])
    assert bad.exit_code == 2 and "Unknown config key 'model.depth'" in bad.output  # no job has it: still an error


def test_tables_piped_to_a_file_keep_their_full_width(tmp_path):
    """Without a terminal (a log, `| tee`) and without COLUMNS, rich would squeeze tables to 80 columns ("dat…");
    the command prints them at their natural width instead. COLUMNS still folds them."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "-m", "bnablate", "list", "variants"], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert "…" not in out and max(map(len, out.splitlines())) > 120
    folded = subprocess.run([sys.executable, "-m", "bnablate", "list", "variants"], capture_output=True, text=True,
                            env={**env, "COLUMNS": "80"}, check=True).stdout
    assert max(map(len, folded.splitlines())) <= 80


def test_a_sweep_landing_in_a_default_folder_of_other_data_warns(tmp_path):
    """out_dir defaults to runs/<sweep.name> whatever the dataset: a synthetic sweep after a digits one would mix the
    two studies in runs/placement, so the plan says so and names a folder that keeps them apart."""
    base = ["sweep", "model=mlp", "train.epochs=1", "seed=range(2)", "variant=no_bn"]
    assert CliRunner().invoke(app, base).exit_code == 0
    again = CliRunner().invoke(app, [*base, "--dry-run"])
    assert "already holds" not in again.output  # the same study again: nothing to warn about
    other = " ".join(CliRunner().invoke(app, [*base, "dataset=synthetic", "--dry-run"]).output.split())
    assert "runs/placement (the default out_dir" in other and "adds dataset=synthetic model=mlp" in other
    assert "pass out_dir=runs/placement-synthetic." in other
    mine = CliRunner().invoke(app, [*base, "dataset=synthetic", "out_dir=runs/placement", "--dry-run"]).output
    assert "already holds" not in mine  # an out_dir the user chose is theirs to fill
