"""`bnablate bench` runs its cases end to end on fixture data (it measures; the tests never assert on speed)."""

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from bnablate.cli import app

from .fixtures import write_cifar10, write_mnist_like


def test_bench_cli_writes_every_measurement(tmp_path):
    write_mnist_like(Path("data"), "FashionMNIST", n_train=80, n_test=10)
    write_cifar10(Path("data"), per_batch=16, n_test=10)
    cases = "lenet-fmnist-b16,lenet-fmnist-b16-packed4,mlp-cifar10-b10"
    res = CliRunner().invoke(app, ["bench", "--cases", cases, "--reps", "2", "--samples", "32", "--warmup", "1",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "ratio median" in res.output and "lenet-fmnist-b16-packed4" in res.output
    rows = pd.read_csv("runs/bench/bench.csv")
    assert len(rows) == 3 * 2 * 2  # cases × implementations × repetitions
    assert set(rows["impl"]) == {"tutorial", "bnablate"} and (rows["samples_per_s"] > 0).all()
    summary = pd.read_csv("runs/bench/summary.csv")
    assert list(summary["case"]) == cases.split(",")
    assert (summary["ratio_min"] <= summary["ratio_median"]).all() and (summary["ratio_median"] <= summary["ratio_max"]).all()


def test_bench_rejects_unknown_case():
    res = CliRunner().invoke(app, ["bench", "--cases", "lenet-fmnst-b16"])
    assert res.exit_code == 2 and "Unknown bench case" in res.output
