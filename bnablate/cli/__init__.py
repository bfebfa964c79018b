"""The `bnablate` command line: thin Typer commands over the package's plain functions. Each command imports what it
runs (torch, pandas, Hydra) inside its function, so `--help` and shell completion load none of it."""

from __future__ import annotations

import os
import warnings

from typing import Annotated, List, Optional

import typer

from .bench_cmd import bench_cmd
from ..plugins import PluginError, check_plugins
from .common import console, fail
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


@app.callback()
def _global_options(plugin: Annotated[Optional[List[str]], typer.Option(
        "--plugin", metavar="MODULE", help="Load a plugin (a module name or a .py file) that registers models, datasets or configs; "
                         "repeatable; also BNABLATE_PLUGINS=a,b and installed packages' `bnablate.plugins` entry "
                         "points (docs/extending.md).")] = None) -> None:
    # --plugin itself is read by bnablate.launch before the config schema loads; here every command first loads the
    # plugins (importing the config schema does, before it derives the key lists) and reports one that did not load,
    # as a usage error naming it and the fix. Imported here, not at the top: `bnablate --help` and shell completion
    # never call this, and so never wait for Hydra or a plugin.
    from .. import config  # noqa: F401

    try:
        check_plugins()
    except PluginError as e:
        fail(str(e))


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
