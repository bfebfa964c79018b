"""Run keys, atomic records and the tidy tables rebuilt from them."""

import json

import pandas as pd

from bnablate.config import compose_config, to_plain
from bnablate.results import load_records, rebuild_tables, run_key, variant_summary, write_record
from bnablate.results.records import finished


def _record(cfg, status="ok", accs=(0.5, 0.7), key=None):
    plain = to_plain(cfg)
    metrics = [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "train_acc": a, "val_loss": 1.0, "val_acc": a,
                "test_loss": 1.0, "test_acc": a - 0.01, "lr": 1e-3, "steps": 10 * (i + 1), "epoch_time_s": 0.5,
                "samples_per_s": 100.0} for i, a in enumerate(accs)]
    return {"run_key": key or run_key(plain), "status": status, "error": None if status != "failed" else "boom",
            "config": plain, "metrics": metrics if status != "failed" else [], "n_params": 123, "wall_time_s": 1.0,
            "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:01+00:00",
            "provenance": {"device": "cpu"}}


def test_run_key_covers_results_not_paths():
    base = run_key(to_plain(compose_config(["seed=1"])))
    assert base == run_key(to_plain(compose_config(["seed=1", "out_dir=elsewhere", "dataset.root=/x", "threads=2"])))
    assert base != run_key(to_plain(compose_config(["seed=2"])))
    assert base != run_key(to_plain(compose_config(["seed=1", "variant.placement=post_act"])))
    assert base != run_key(to_plain(compose_config(["seed=1", "optim.lr=0.01"])))


def test_records_and_tables(tmp_path):
    for seed in range(3):
        for variant in ("no_bn", "bn_post_act"):
            write_record(tmp_path, _record(compose_config([f"seed={seed}", f"variant={variant}"]),
                                           accs=(0.5, 0.6 + 0.1 * (variant == "no_bn") + 0.01 * seed)))
    failed = _record(compose_config(["seed=9"]), status="failed")
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
    summary = variant_summary(runs)
    top = summary.iloc[0]
    assert top["variant"] == "no_bn" and top["n"] == 3
    assert abs(top["mean"] - (0.69 + 0.70 + 0.71) / 3) < 1e-9
    bn_pre = summary[summary["variant"] == "bn_pre_act"].iloc[0]
    assert bn_pre["failed"] == 1 and bn_pre["n"] == 0


def test_record_written_atomically_leaves_no_temp_files(tmp_path):
    rec = _record(compose_config([]))
    path = write_record(tmp_path, rec)
    assert json.loads(path.read_text())["run_key"] == rec["run_key"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]
