"""The `bnablate` command line: thin Typer commands over the package's plain functions."""

from __future__ import annotations

import os
import warnings

import typer

from .bench_cmd import bench_cmd
from .common import console
from .inspect_cmd import inspect_cmd
from .list_cmd import list_cmd
from .report_cmd import report_cmd
from .run_cmd import run_cmd
from .sweep_cmd import sweep_cmd
from .verify_cmd import verify_cmd

app = typer.Typer(
    name="bnablate", no_args_is_help=True, add_completion=True, rich_markup_mode=None,
    help="Where does Batch Normalization go? Paired, multi-seed BN-placement ablations with tidy results.",
)
app.command("list")(list_cmd)
app.command("inspect")(inspect_cmd)
app.command("run")(run_cmd)
app.command("sweep")(sweep_cmd)
app.command("report")(report_cmd)
app.command("bench")(bench_cmd)
app.command("verify")(verify_cmd)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"  # users need the message, not the library line that raised it


# Piped to a file or a log (no terminal, no COLUMNS), rich would lay everything out at 80 columns: cells cut to "dat…",
# the verdict column dropped. Tables are then printed at their natural width, each note on one line; COLUMNS=N folds.
PIPED_WIDTH = 1000


def main() -> None:
    warnings.formatwarning = _one_line_warning
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPED_WIDTH
    app()
