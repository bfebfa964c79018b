"""results.parquet / runs.parquet beside the CSVs, with proper dtypes (optional: `pip install bnablate[parquet]`)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write

# Factors and labels: few distinct values per column, so categoricals (what the report groups by).
CATEGORICAL = ("status", "sweep", "variant", "dataset", "model", "norm", "placement", "dropout", "bias", "activation",
               "optimizer", "schedule")
# Counts: nullable integers (a failed run has no steps, epochs_done 0, no best epoch).
INTEGER = ("epoch", "epochs", "batch_size", "seed", "groups", "steps", "n_params", "epochs_done", "best_epoch",
           "pack_size", "n_train", "n_val", "n_test")


def available() -> bool:
    """Whether pyarrow is installed (the tables are then also written as Parquet)."""
    return importlib.util.find_spec("pyarrow") is not None


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """The table with Parquet's dtypes: categoricals for factors, nullable ints for counts, floats for metrics; an
    object column holding more than one kind of value (e.g. strings and numbers) as strings, which Arrow requires."""
    out = df.copy()
    for col in out.columns:
        if col in CATEGORICAL:
            out[col] = out[col].astype("category")
        elif col in INTEGER:
            out[col] = pd.to_numeric(out[col]).astype("Int64")
        elif out[col].dtype == object:
            kinds = {type(v) for v in out[col] if v is not None and v == v}
            if len(kinds) > 1:
                out[col] = out[col].map(lambda v: None if v is None or v != v else str(v))
    return out


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write `df` typed (see typed) to path atomically (a reader never sees half a file)."""
    buf = io.BytesIO()
    typed(df).to_parquet(buf, index=False)
    atomic_write(path, buf.getvalue())
