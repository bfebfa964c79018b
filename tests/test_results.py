"""Run keys, atomic records and the tidy tables rebuilt from them."""

import json
import os
import stat

import pandas as pd
import pytest

from bnablate.config import compose_config, to_plain
from bnablate.results import load_records, rebuild_tables, run_key, write_record
from bnablate.results.schema import finished

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


def test_new_keys_at_their_defaults_keep_earlier_run_keys():
    """Records written before bn, finetune and dataset.classes existed keep their keys (reruns still skip them)."""
    for over in ([], ["model=cnn", "variant=gn_pre_act", "seed=3"]):
        plain = to_plain(compose_config(over))
        old = {k: v for k, v in plain.items() if k not in ("bn", "finetune")}
        old["dataset"] = {k: v for k, v in plain["dataset"].items() if k != "classes"}
        assert run_key(plain) == run_key(old)
    base = run_key(to_plain(compose_config([])))
    for changed in ("bn.eval_stats=batch", "bn.precise_batches=50", "bn.momentum=null", "bn.momentum=0.01",
                    "bn.eps=1e-3", "bn.affine=false", "dataset.classes=[0,1]", "finetune.source=digits"):
        assert run_key(to_plain(compose_config([changed]))) != base, changed
    assert run_key(to_plain(compose_config(["finetune.checkpoint_dir=/elsewhere"]))) == base  # a path, not a result


def test_bn_and_finetune_keys_are_columns_and_old_records_show_their_neutral_values(tmp_path):
    old = make_record(["seed=0"])
    for section in ("bn", "finetune"):
        del old["config"][section]  # as written before these keys existed
    write_record(tmp_path, old)
    write_record(tmp_path, make_record(["seed=1"]))
    write_record(tmp_path, make_record(["seed=0", "bn.eval_stats=precise", "finetune.source=digits",
                                        "finetune.bn=freeze", "dataset.classes=[5,6,7,8,9]"]))
    rebuild_tables(tmp_path)
    on_disk = pd.read_csv(tmp_path / "runs.csv")
    for col in ("bn.eval_stats", "bn.precise_batches", "bn.momentum", "bn.eps", "bn.affine", "finetune.source",
                "finetune.bn", "finetune.source_epochs", "dataset.classes", "source_test_acc"):
        assert col in on_disk.columns, col
    assert "finetune.checkpoint_dir" not in on_disk.columns
    assert on_disk["bn.eval_stats"].tolist().count("running") == 2 and set(on_disk["finetune.bn"]) == {"train", "freeze"}
    assert {"bn.eval_stats", "finetune.bn"} <= set(pd.read_csv(tmp_path / "results.csv").columns)


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_users_umask_as_open_would(umask, expected, tmp_path):
    """Records, tables, the report's CSVs, summary.md and index.html land with the mode `open(path, "w")` gives
    under the process's umask (a lab's shared results folder stays readable), not mkstemp's 0600."""
    from bnablate.reports import make_report

    previous = os.umask(umask)
    try:
        for seed in range(2):
            for variant in ("no_bn", "bn_post_act"):
                write_record(tmp_path, make_record([f"seed={seed}", f"variant={variant}"]))
        rebuild_tables(tmp_path)
        make_report([tmp_path], out=tmp_path / "report", formats=["csv", "md", "html"])
        plain = tmp_path / "plain.txt"
        with open(plain, "w"):
            pass
    finally:
        os.umask(previous)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != plain]
    names = {p.name for p in files}
    assert {"runs.csv", "results.csv", "summary.md", "index.html", "comparisons.csv"} <= names, names
    assert len(list((tmp_path / "records").glob("*.json"))) == 4
    assert stat.S_IMODE(plain.stat().st_mode) == expected  # the reference: what every other tool writes
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: oct(expected) for p in files}


def test_an_explicit_mode_is_kept_whatever_the_umask(tmp_path):
    from bnablate.atomic import atomic_file

    previous = os.umask(0o077)
    try:
        with atomic_file(tmp_path / "shared.bin", mode=0o644) as f:
            f.write(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "shared.bin").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]  # no temp file left
