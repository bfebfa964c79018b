"""`bnablate report` on a folder of tables only (runs/results as Parquet or CSV, no records/): the same report."""

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from bnablate import api
from bnablate.cli import app
from bnablate.reports.sources import table_files
from bnablate.results.tables import SUMMARY_COLUMNS, run_summary


@pytest.fixture
def swept(tmp_path):
    res = CliRunner().invoke(app, ["sweep", "model=mlp", "train.epochs=2", "variant=no_bn,bn_pre_act",
                                   "seed=range(3)", "out_dir=runs/src"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return tmp_path / "runs" / "src"


def _tables_only(src, dst, ext):
    dst.mkdir(parents=True)
    for name in ("runs", "results"):
        shutil.copy(src / f"{name}.{ext}", dst / f"{name}.{ext}")
    return dst


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_report_from_tables_equals_report_from_records(swept, tmp_path, ext):
    if ext == "parquet":
        pytest.importorskip("pyarrow")
    folder = _tables_only(swept, tmp_path / f"shared-{ext}", ext)
    assert {p.suffix for p in table_files(folder).values()} == {f".{ext}"}
    want = api.report(swept, formats=())
    got = api.report(folder, formats=())
    assert got.by == want.by
    # the tables do not carry which test images each run got right: those columns are empty, the rest identical
    tests = [c for c in want.comparisons if c == "churn" or c.endswith("_tests")]
    assert want.comparisons["churn"].notna().all() and got.comparisons[tests].isna().all().all()
    pd.testing.assert_frame_equal(got.summary.drop(columns=["churn", "diff_ci_low_tests", "diff_ci_high_tests"]),
                                  want.summary.drop(columns=["churn", "diff_ci_low_tests", "diff_ci_high_tests"]))
    pd.testing.assert_frame_equal(got.comparisons.drop(columns=tests), want.comparisons.drop(columns=tests))
    assert any("has no records/" in n and f"runs.{ext}" in n for n in got.notes)


def test_report_cli_on_tables_and_a_folder_with_neither(swept, tmp_path):
    folder = _tables_only(swept, tmp_path / "shared", "csv")
    res = CliRunner().invoke(app, ["report", str(folder), "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert "bn_pre_act" in res.output and (folder / "report" / "summary.csv").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(app, ["report", str(empty)])
    assert res.exit_code == 2 and "runs.parquet + results.parquet" in res.output and "Traceback" not in res.output


def test_records_win_over_tables_of_the_same_runs(swept, tmp_path):
    folder = _tables_only(swept, tmp_path / "copy", "csv")
    runs = pd.read_csv(folder / "runs.csv")
    runs["final_test_acc"] = -1.0  # a stale copy: its finished_at ties the records', so the records win
    runs.to_csv(folder / "runs.csv", index=False)
    merged = api.report([swept, folder], formats=())
    assert (merged.summary["n_runs"] == 3).all()
    assert (merged.summary["final_test_acc_mean"] > 0).all()


def test_summary_columns_are_what_run_summary_writes():
    rec = {"metrics": [{"epoch": 1, "steps": 2, "epoch_time_s": 1.0, "samples_per_s": 3.0, "train_loss": 0.1,
                        "train_acc": 0.9, "val_loss": 0.2, "val_acc": 0.8, "test_loss": 0.3, "test_acc": 0.7}]}
    assert set(run_summary(rec)) == set(SUMMARY_COLUMNS)


def test_pivot_figure_draws_a_group_without_the_factor_as_a_horizontal_line(tmp_path, monkeypatch):
    """A GroupNorm group has no ghost batch size: it is one dashed line (with its CI band) across the numeric axis,
    not a point at a made-up position."""
    from types import SimpleNamespace

    from bnablate.reports import pivot, plots

    summary = pd.DataFrame({
        "variant": ["bn_pre_act"] * 3 + ["gn_pre_act"],
        "bn.ghost_batch_size": [2, 16, 256, None],
        "final_test_acc_mean": [0.30, 0.50, 0.45, 0.40],
        "final_test_acc_ci_low": [0.28, 0.48, 0.43, 0.38], "final_test_acc_ci_high": [0.32, 0.52, 0.47, 0.42]})
    report = SimpleNamespace(summary=summary, metric="final_test_acc", by=["variant", "bn.ghost_batch_size"])
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out, stem: figures.append(fig) or [])
    pivot.pivot_figure(report, "bn.ghost_batch_size", tmp_path, "pivot")
    ax = figures[0].axes[0]
    assert ax.get_xscale() == "log"  # numeric, 2 … 256
    gn = [ln for ln in ax.get_lines() if ln.get_label().startswith("gn_pre_act")]
    assert len(gn) == 1 and list(gn[0].get_ydata()) == pytest.approx([40.0, 40.0])  # horizontal, its mean in %
    bn = [c for c in ax.containers if c.get_label() == "bn_pre_act"]  # errorbar's container: its data line first
    assert list(bn[0].lines[0].get_xdata()) == [2, 16, 256]


def test_integer_factors_with_gaps_label_and_sort_as_integers():
    """A key some runs lack (GroupNorm has no ghost batch size) leaves pandas a float column: the labels stay the
    configs' integers (so --baseline bn.ghost_batch_size=256 matches), sorted as numbers, the missing one last."""
    from bnablate.reports.render import natural_key
    from bnablate.reports.summary import as_labels

    runs = pd.DataFrame({"bn.ghost_batch_size": [256, 4, None, 32], "lr": [1.0, 0.5, 0.1, 2.0],
                         "model.mlp_ratio": [2.0, None, 4.0, 2.0], "batch_size": [64.0, None, 32.0, 8.0]})
    labels = as_labels(runs, ["bn.ghost_batch_size", "lr", "model.mlp_ratio", "batch_size"])
    assert list(labels["bn.ghost_batch_size"]) == ["256", "4", "—", "32"]
    assert list(labels["batch_size"]) == ["64", "—", "32", "8"]  # a factor's short name: an int key too
    assert list(labels["lr"]) == ["1.0", "0.5", "0.1", "2.0"]  # float keys keep their form,
    assert list(labels["model.mlp_ratio"]) == ["2.0", "—", "4.0", "2.0"]  # with gaps too
    order = labels.sort_values("bn.ghost_batch_size", key=natural_key)["bn.ghost_batch_size"]
    assert list(order) == ["4", "32", "256", "—"]
