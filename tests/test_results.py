"""Run keys, atomic records and the tidy tables rebuilt from them."""

import json

import pandas as pd

from bnablate.config import compose_config, to_plain
from bnablate.results import load_records, rebuild_tables, run_key, write_record
from bnablate.results.records import finished

from .fixtures import make_record


def test_run_key_covers_results_not_paths():
    base = run_key(to_plain(compose_config(["seed=1"])))
    assert base == run_key(to_plain(compose_config(["seed=1", "out_dir=elsewhere", "dataset.root=/x", "threads=2"])))
    assert base != run_key(to_plain(compose_config(["seed=2"])))
    assert base != run_key(to_plain(compose_config(["seed=1", "variant.placement=post_act"])))
    assert base != run_key(to_plain(compose_config(["seed=1", "optim.lr=0.01"])))


def test_records_and_tables(tmp_path):
    for seed in range(3):
        for variant in ("no_bn", "bn_post_act"):
            write_record(tmp_path, make_record([f"seed={seed}", f"variant={variant}"],
                                               val_accs=(0.5, 0.6 + 0.1 * (variant == "no_bn") + 0.01 * seed)))
    failed = make_record(["seed=9"], status="failed")
    write_record(tmp_path, failed)
    assert len(load_records(tmp_path)) == 7
    assert finished(tmp_path, failed["run_key"]) is None  # failed runs are retried
    results, runs = rebuild_tables(tmp_path)
    assert len(results) == 12 and len(runs) == 7  # run × epoch rows; failed runs have no epoch rows
    on_disk = pd.read_csv(tmp_path / "runs.csv")
    assert list(on_disk.columns) == list(runs.columns)
    for col in ("run_key", "status", "variant", "dataset", "model", "norm", "placement", "dropout", "bias",
                "activation", "optimizer", "lr", "batch_size", "seed", "final_test_acc", "best_val_acc",
                "test_acc_at_best_val", "n_params"):
        assert col in on_disk.columns, col
    assert set(pd.read_csv(tmp_path / "results.csv")["epoch"]) == {1, 2}


def test_record_written_atomically_leaves_no_temp_files(tmp_path):
    rec = make_record([])
    path = write_record(tmp_path, rec)
    assert json.loads(path.read_text())["run_key"] == rec["run_key"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]
