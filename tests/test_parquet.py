"""results.parquet / runs.parquet: written beside the CSVs when pyarrow is installed, typed, equal to the tables."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.results import build_tables, load_records
from bnablate.results.parquet import CATEGORICAL, INTEGER, typed

pytest.importorskip("pyarrow")


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Values only (dtypes aside, every missing value as None), for comparing a typed table with its CSV."""
    return df.astype(object).where(df.notna(), None).reset_index(drop=True)


def test_parquet_tables_are_typed_and_equal_the_csv_and_the_records(tmp_path):
    res = CliRunner().invoke(app, ["sweep", "model=mlp", "train.epochs=2", "variant=no_bn,bn_pre_act",
                                   "seed=range(2)", "out_dir=runs/pq"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    folder = tmp_path / "runs" / "pq"
    results, runs = build_tables(load_records(folder))
    for name, frame in (("results", results), ("runs", runs)):
        pq = pd.read_parquet(folder / f"{name}.parquet")
        pd.testing.assert_frame_equal(pq, typed(frame))  # the frame the report builds, with Parquet's dtypes
        csv = pd.read_csv(folder / f"{name}.csv")
        assert list(pq.columns) == list(csv.columns) and len(pq) == len(csv)
        for col in pq.columns:  # same values as the CSV, column by column
            a, b = _plain(pq[[col]].astype(str if col in CATEGORICAL else object)), _plain(csv[[col]])
            if col in CATEGORICAL:
                b = b.astype(str)
            assert a[col].tolist() == b[col].tolist() or pd.to_numeric(a[col]).tolist() == pytest.approx(
                pd.to_numeric(b[col]).tolist(), nan_ok=True), col
        assert str(pq["variant"].dtype) == "category" and str(pq["seed"].dtype) == "Int64"
        assert pq["final_test_acc" if name == "runs" else "test_acc"].dtype == "float64"
    assert set(INTEGER) & set(runs.columns) >= {"seed", "epochs", "batch_size", "n_params"}
