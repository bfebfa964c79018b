"""`bnablate bench` runs its cases end to end on fixture data (it measures; the tests never assert on speed)."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bnablate.bench.sweep_bench import placement_variants
from bnablate.cli import app
from bnablate.variants import variant_presets

from .fixtures import write_cifar10, write_mnist_like


def test_bench_cli_writes_every_measurement(tmp_path):
    write_mnist_like(Path("data"), "FashionMNIST", n_train=80, n_test=10)
    write_cifar10(Path("data"), per_batch=16, n_test=10)
    cases = "lenet-fmnist-b16,lenet-fmnist-b16-packed4,mlp-cifar10-b10,lenet-fmnist-b16-packed8-vs-vmap"
    res = CliRunner().invoke(app, ["bench", "optim.fused=true", "--cases", cases, "--reps", "2", "--samples", "32",
                                   "--warmup", "1", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "ratio median" in res.output and "lenet-fmnist-b16-packed4" in res.output
    rows = pd.read_csv("runs/bench/bench.csv")
    assert len(rows) == 4 * 2 * 2  # cases × implementations × repetitions
    assert set(rows["impl"]) == {"tutorial", "vmap", "bnablate"} and (rows["samples_per_s"] > 0).all()
    summary = pd.read_csv("runs/bench/summary.csv")
    assert list(summary["case"]) == cases.split(",")
    assert list(summary["reference"]) == ["tutorial"] * 3 + ["vmap"]  # the grouped pack against the vmap pack
    assert (summary["ratio_min"] <= summary["ratio_median"]).all() and (summary["ratio_median"] <= summary["ratio_max"]).all()


def test_bench_rejects_unknown_case():
    res = CliRunner().invoke(app, ["bench", "--cases", "lenet-fmnst-b16"])
    assert res.exit_code == 2 and "Unknown bench case" in res.output


def test_bench_applies_the_trainers_execution_options(tmp_path, monkeypatch):
    """train.compile / channels_last / precision reach bnablate's side as a run applies them (not silently dropped)."""
    import bnablate.bench.harness as harness
    seen = []

    def spy(model, train):  # stands in for torch.compile, which would take minutes here
        seen.append((bool(train.compile), bool(train.channels_last)))
        return model
    monkeypatch.setattr(harness, "prepare_model", spy)
    write_mnist_like(Path("data"), "FashionMNIST", n_train=80, n_test=10)
    res = CliRunner().invoke(app, ["bench", "train.compile=true", "train.channels_last=true", "--cases",
                                   "lenet-fmnist-b16", "--reps", "1", "--samples", "32", "--warmup", "1",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert seen == [(True, True)]  # bnablate's side, once per repetition; the tutorial loop stays plain


def test_bench_refuses_an_option_a_packed_case_cannot_run(tmp_path):
    write_mnist_like(Path("data"), "FashionMNIST", n_train=80, n_test=10)
    res = CliRunner().invoke(app, ["bench", "train.compile=true", "--cases", "lenet-fmnist-b16,lenet-fmnist-b16-packed4",
                                   "--reps", "1", "--samples", "32", "--device", "cpu"])
    assert res.exit_code == 2, res.output
    assert "lenet-fmnist-b16-packed4 trains a pack" in res.output and "train.compile" in res.output
    assert not Path("runs/bench/bench.csv").exists()  # refused before anything was timed


def test_folding_bn_is_exact_and_only_where_bn_follows_an_affine_layer():
    import torch

    from bnablate.bench.inference import _randomize_bn_stats, fold_bn
    from bnablate.config import compose_config
    from bnablate.models import build_model

    g = torch.Generator().manual_seed(0)
    expected = {"bn_pre_act": (4, 0), "bn_post_act": (0, 4), "bn_post_pool": (0, 4), "no_bn": (0, 0)}
    for variant, counts in expected.items():
        cfg = compose_config(["model=lenet", f"variant={variant}"])
        model = build_model(cfg.model, cfg.variant, (1, 28, 28), 10, seed=0).eval()
        _randomize_bn_stats(model, g)
        fused, folded, left = fold_bn(model)
        assert (folded, left) == counts, variant
        x = torch.randn(8, 1, 28, 28)
        with torch.no_grad():
            torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=0)
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d) for m in fused.modules())
        assert n_bn == counts[1]


@pytest.mark.slow  # a benchmark; fold_bn's equality is tested fast
def test_inference_bench_cli():
    res = CliRunner().invoke(app, ["bench", "--inference", "--reps", "1", "--min-seconds", "0.001"])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv("runs/bench/inference.csv")
    assert len(rows) == 2 * 4 * 2 and (rows["max_abs_diff"] < 1e-5).all()
    assert set(rows[rows["variant"] == "bn_pre_act"]["bn_left"]) == {0}


def test_sweep_bench_cli_times_whole_runs_both_ways():
    write_mnist_like(Path("data"), "FashionMNIST", n_train=300, n_test=20)
    res = CliRunner().invoke(app, ["bench", "--sweep", "--epochs", "1", "--device", "cpu", "--seeds", "3"])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv("runs/bench/sweep.csv")
    assert len(rows) == 4 * 2 and set(rows["impl"]) == {"tutorial", "bnablate"}
    # the tutorial trains on all 300 images (drop_last=False); bnablate on its 270 after the validation split
    assert set(rows[rows["impl"] == "tutorial"]["train_samples"]) == {300}
    assert set(rows[rows["impl"] == "bnablate"]["train_samples"]) == {270}
    n = len(placement_variants())  # the preset's variants × --seeds, not a number written into the help
    assert f"scaled to the {n * 3}-run sweep ({n} variants × 3 seeds" in " ".join(res.output.split())
    help_text = " ".join(CliRunner().invoke(app, ["bench", "--help"], terminal_width=200).output.split())
    assert f"{n} variants × --seeds" in help_text



def test_whole_sweep_bench_times_the_placement_presets_variants():
    variants = placement_variants()  # read from conf/sweep/placement.yaml
    assert len(variants) == 8 and len(set(variants)) == 8 and set(variants) <= set(variant_presets().names())


def test_whole_sweep_bench_on_synthetic_files_times_every_run_against_one_tutorial_run():
    res = CliRunner().invoke(app, ["bench", "--sweep", "--whole", "--model", "mlp", "--dataset", "mnist",
                                   "--synthetic", "300", "--epochs", "1", "--seeds", "2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "synthetic data: 300 random training images" in res.output and "all 16 runs took" in res.output
    rows = pd.read_csv("runs/bench/sweep_whole.csv")
    tut, ours = rows[rows["impl"] == "tutorial"], rows[rows["impl"] == "bnablate"]
    assert len(tut) == 1 and tut["train_samples"].iloc[0] == 300  # torchvision's whole (synthetic) training set
    assert ours["runs"].sum() == 16 and ours["variant"].nunique() == 8 and (ours["seconds"] > 0).all()
    assert not Path("data").exists()  # the synthetic files lived in a temp folder


def test_bench_on_synthetic_files_and_bad_device():
    cases = "cnn-cifar10-b128,resnet20-cifar10-b128,vit-fmnist-b128"
    res = CliRunner().invoke(app, ["bench", "--cases", cases, "--reps", "1", "--samples", "128", "--warmup", "0",
                                   "--synthetic", "200", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert all(case in res.output for case in cases.split(","))
    assert len(pd.read_csv("runs/bench/bench.csv")) == 6  # 3 cases × 2 implementations
    bad = CliRunner().invoke(app, ["bench", "--sweep", "--device", "tpu"])
    assert bad.exit_code == 2 and "Unknown device 'tpu'" in bad.output


@pytest.mark.slow  # a benchmark of whole sweeps
def test_process_bench_runs_the_same_sweep_in_one_process_and_through_joblib():
    res = CliRunner().invoke(app, ["bench", "--processes", "--model", "mlp", "--dataset", "mnist", "--synthetic", "300",
                                   "--epochs", "1", "--seeds", "1", "--jobs", "2", "--reps", "1"])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv("runs/bench/processes.csv")
    assert list(rows["mode"]) == ["one process", "joblib"] and list(rows["processes"]) == [1, 2]
    assert (rows["runs"] == 2).all() and (rows["seconds"] > 0).all()  # no_bn and bn_pre_act, each side
    assert "joblib / one process throughput" in " ".join(res.output.split())
    bad = CliRunner().invoke(app, ["bench", "--processes", "--jobs", "-1"])
    assert bad.exit_code == 2 and "--jobs ≥ 0" in bad.output


def test_packing_bench_times_a_pack_against_the_same_runs_one_after_another(monkeypatch):
    import functools

    import bnablate.bench.pack_bench as pb

    rows = pb.pack_bench(models=(("lenet", "fashion_mnist"),), batch_sizes=(4, 8), k=2, steps=3, reps=2)
    assert [(r["batch_size"], r["rep"]) for r in rows] == [(4, 0), (4, 1), (8, 0), (8, 1)]
    assert all(r["packed_s"] > 0 and r["sequential_s"] > 0 and r["ratio"] == r["sequential_s"] / r["packed_s"]
               for r in rows)
    (first, second) = pb.summarize_packing(rows)
    assert first["batch_size"] == 4 and first["ratio_min"] <= first["ratio_median"] <= first["ratio_max"]

    small = functools.partial(pb.pack_bench, models=(("mlp", "cifar10"),), batch_sizes=(2,), k=2, steps=2)
    monkeypatch.setattr(pb, "pack_bench", small)
    res = CliRunner().invoke(app, ["bench", "--packing", "--reps", "1", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "packed vs one after another" in res.output and "mlp" in res.output
    assert len(pd.read_csv("runs/bench/packing.csv")) == 1


def test_bench_startup_times_each_keystroke_in_a_fresh_process(tmp_path):
    from bnablate.bench.startup_bench import KEYSTROKES

    res = CliRunner().invoke(app, ["bench", "--startup", "--reps", "1", "--out", str(tmp_path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(tmp_path / "startup.csv")
    assert list(rows["keystroke"]) == list(KEYSTROKES) and (rows["seconds"] > 0).all() and (rows["cpu_seconds"] > 0).all()
    assert all(name in res.output for name in KEYSTROKES)


def test_busy_summary_is_each_scenario_over_the_same_setting_alone():
    from bnablate.bench.busy_bench import summarize_busy

    rows = [{"setting": "auto", "scenario": "alone", "rep": r, "seconds": s} for r, s in enumerate((10.0, 12.0, 11.0))]
    rows += [{"setting": "auto", "scenario": "two at once", "rep": 0, "seconds": s} for s in (16.0, 17.0)]
    rows += [{"setting": "one", "scenario": "alone", "rep": 0, "seconds": 20.0},
             {"setting": "one", "scenario": "beside a busy loop", "rep": 0, "seconds": 25.0}]
    got = {(r["setting"], r["scenario"]): (r["median_s"], r["ratio"]) for r in summarize_busy(rows)}
    assert got == {("auto", "alone"): (11.0, 1.0), ("auto", "two at once"): (16.5, 1.5),
                   ("one", "alone"): (20.0, 1.0), ("one", "beside a busy loop"): (25.0, 1.25)}


@pytest.mark.slow  # nine real sweep commands, two of them at once
def test_busy_bench_times_two_at_once_and_beside_a_busy_loop(tmp_path, monkeypatch):
    import bnablate.cli.bench_modes as modes
    from bnablate.bench.busy_bench import SCENARIOS, settings

    monkeypatch.setattr(modes, "DEFAULT_SWEEP", ("model=mlp", "variant=no_bn", "seed=0", "train.epochs=1",
                                                 "dataset.train_subset=100"))
    res = CliRunner().invoke(app, ["bench", "--busy", "--reps", "1", "--out", str(tmp_path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(tmp_path / "busy.csv")
    # per setting: alone, two at once (two processes), beside a busy loop
    assert len(rows) == 4 * len(settings()) and set(rows["scenario"]) == set(SCENARIOS) and (rows["seconds"] > 0).all()
    assert "× alone" in res.output and "auto (threads=0)" in res.output
