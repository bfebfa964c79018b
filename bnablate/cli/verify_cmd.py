"""`bnablate verify`: re-run recorded runs from their saved configs and report any metric that does not reproduce."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import console, fail
from .report_cmd import warn_bad_records


def verify_cmd(
    runs_dir: Annotated[Path, typer.Argument(help="A folder written by `bnablate sweep` or `run` (holds records/).")],
    sample: Annotated[int, typer.Option(help="How many finished runs to re-run, drawn at random (0 = all).")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the random draw of runs.")] = 0,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail (exit 2) when a file in records/ is unreadable or not a valid record, instead of "
                         "warning and verifying the rest.")] = False,
) -> None:
    """Train a sample of recorded runs again from their saved resolved configs (in a temporary folder; RUNS_DIR is not
    touched) and compare every per-epoch metric bit for bit, timings excepted; a run trained in a pack is re-trained
    in its pack. Exit 0 when all match, 1 otherwise."""
    from ..results.schema import RecordError, scan_records, strict_error  # here: `--help` must not wait for them
    from ..variants import config_label
    from ..verify import verify_runs

    if sample < 0:
        fail(f"--sample must be ≥ 0 (0 = every run), got {sample}.")
    try:
        scan = scan_records(runs_dir)
    except RecordError as e:  # a record of a newer schema version
        fail(str(e))
    if strict and scan.bad:
        fail(str(strict_error(scan.bad)))
    warn_bad_records(scan.bad)
    if not scan.records:
        fail(f"{runs_dir} holds no {'readable ' if scan.bad else ''}run records ({runs_dir}/records/*.json"
             + (f"; {len(scan.bad)} bad file(s), named above" if scan.bad else "") +
             "); give a folder written by `bnablate sweep` or `bnablate run`.")

    _check_composable(scan.records)

    def progress(rec, found, alone) -> None:
        what = f"{rec['config']['model']['name']} {rec['config']['dataset']['name']} " \
               f"{config_label(rec['config'])} seed={rec['config']['seed']}"
        note = f" ({alone}, so re-run alone: a lone run matches a packed one only to float tolerance)" \
            if found and alone else ""
        console.print(f"{rec['run_key']} {what}: " + ("[green]identical[/green]" if not found
                                                      else f"[red]{len(found)} mismatch(es)[/red]{note}"))
    with tempfile.TemporaryDirectory(prefix="bnablate-verify-") as scratch:
        results = verify_runs(runs_dir, sample, seed, Path(scratch), on_run=progress, records=scan.records)
    if not results:
        fail(f"{runs_dir} has no finished (ok or diverged) runs to verify.")
    bad = [m for found in results.values() for m in found]
    if not bad:
        console.print(f"all {len(results)} re-run(s) reproduced every per-epoch metric exactly.")
        return
    table = Table(title="metrics that did not reproduce", title_justify="left")
    for col in ("run_key", "epoch", "metric", "recorded", "rerun"):
        table.add_column(col)
    for m in bad:
        table.add_row(m.run_key, "" if m.epoch is None else str(m.epoch), m.metric, repr(m.recorded), repr(m.rerun))
    console.print(table)
    console.print(f"{sum(bool(f) for f in results.values())} of {len(results)} re-run(s) differ.")
    raise typer.Exit(1)


def _check_composable(records) -> None:
    """Each (dataset, model) the records name composes here, before anything re-trains: a folder from a model or dataset
    registered by a plugin that is not loaded is a usage error naming it, not a traceback."""
    from ..config import compose_config
    from .compose import CONFIG_ERRORS, explain

    for dataset, model in sorted({(r["config"]["dataset"]["name"], r["config"]["model"]["name"]) for r in records}):
        try:
            compose_config([f"dataset={dataset}", f"model={model}"])
        except CONFIG_ERRORS as e:
            fail(f"the records name dataset={dataset} model={model}, which this bnablate cannot compose: "
                 f"{explain(e, [f'dataset={dataset}', f'model={model}'])} Load what registers it (the plugin or "
                 f"config that defined it when these runs were trained) and verify again.")
