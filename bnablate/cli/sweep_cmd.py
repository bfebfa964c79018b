"""`bnablate sweep`: a grid of runs through Hydra's multirun, with progress, resume and a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Dict, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..data import DataError, DataSplits, load_data
from ..registry import UnknownNameError
from ..report import make_report
from ..results import rebuild_tables
from ..results.records import OutputError, check_writable
from .. import sweep
from ..sweep import (Reporter, execute_pack, launch_multirun, pack_groups, plan_sweep, set_reporter,
                     use_packing)
from ..train import ConfigError, validate_config
from ..train.runner import check_data
from ..variants import variant_label
from .common import CONFIG_ERRORS, console, explain, fail
from .report_cmd import print_report

SWEEP_HELP = ("Hydra overrides and sweeps: sweep=NAME picks a preset from conf/sweep; variant=a,b seed=range(5) "
              "builds a grid (the command line wins over the preset per key); hydra/launcher=joblib runs jobs in "
              "parallel.")


class ProgressReporter(Reporter):
    """Rich progress: runs done/total with ETA, and the current run's epochs."""

    def __init__(self, total: int) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
        self.runs = self.progress.add_task("runs", total=total)
        self.epochs = self.progress.add_task("epochs", total=1, visible=False)
        self.done = 0
        self.seen: set = set()  # run keys already counted (a packed run is later skipped by the launcher)

    def run_started(self, cfg, key: str, pack: int = 1) -> None:
        who = f"seed={cfg.seed}" if pack == 1 else f"{pack} seeds packed"
        self.progress.reset(self.epochs, total=int(cfg.train.epochs), visible=True,
                            description=f"  {variant_label(cfg.variant)} {who}")

    def epoch_done(self, row: Dict[str, Any]) -> None:
        self.progress.advance(self.epochs)

    def run_done(self, record: Dict[str, Any]) -> None:
        if record["run_key"] in self.seen:
            return
        self.seen.add(record["run_key"])
        self.done += 1
        self.progress.advance(self.runs)
        cfg, m = record["config"], record.get("metrics") or []
        what = f"{record.get('variant') or variant_label(cfg['variant'])} seed={cfg['seed']}"
        if record["status"] == "running elsewhere":
            outcome = "being trained by another process into this folder, skipped (rerun later to report it)"
        elif record.get("skipped"):
            outcome = "already done, skipped"
        elif record["status"] == "failed":
            outcome = f"[red]failed[/red]: {record['error']}"
        else:
            outcome = f"{record['status']}, test_acc={m[-1]['test_acc']:.4f} ({record['wall_time_s']:.1f}s)" if m else record["status"]
        self.progress.console.print(f"[{self.done}/{self.progress.tasks[0].total}] {cfg['model']['name']} "
                                    f"{cfg['dataset']['name']} {what}: {outcome}", highlight=False)


def _validator():
    """Validate each job's config; load each distinct dataset once so missing files fail before any training."""
    seen: Dict[str, DataSplits] = {}

    def validate(cfg) -> None:
        validate_config(cfg)
        use_packing(cfg)
        key = repr(sorted(cfg.dataset.items()))
        if key not in seen:
            seen[key] = load_data(cfg.dataset)
        check_data(cfg, seen[key])  # e.g. a batch larger than the training split
    return validate


def _train_packs(plan) -> None:
    for pack in pack_groups(plan.configs, plan.keys):
        try:
            execute_pack(pack)
        except Exception as e:  # noqa: BLE001  (the launcher then trains these runs one by one)
            console.print(f"[yellow]pack of {len(pack)} not trained as a pack[/yellow] ({type(e).__name__}: {e}); "
                          "running its runs one by one.")


def sweep_cmd(overrides: Annotated[Optional[List[str]], typer.Argument(help=SWEEP_HELP)] = None) -> None:
    """Train a grid of runs (default: the `placement` preset on digits), resuming finished runs, then summarize."""
    overrides = list(overrides or [])
    try:
        plan = plan_sweep(overrides, _validator())
    except (ConfigError, UnknownNameError, DataError) as e:
        fail(str(e))
    except CONFIG_ERRORS as e:
        fail(explain(e, overrides))
    if not plan.jobs:
        fail("The sweep is empty: no runs to do. Give values, e.g. variant=no_bn,bn_pre_act seed=range(3).")
    try:
        for out_dir in plan.out_dirs:
            check_writable(out_dir)
    except OutputError as e:
        fail(str(e))
    done = plan.finished_count()
    dirs = ", ".join(str(d) for d in plan.out_dirs)
    console.print(f"sweep: {len(plan.jobs)} runs → {dirs}" +
                  (f"; {done} already completed there, skipping them (delete the records to retrain)" if done else ""))
    launcher = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra/launcher=")), "basic")
    if launcher != "basic":
        console.print(f"launcher {launcher}: runs execute in its worker processes, so per-run progress is not shown "
                      "here; each run's record appears in records/ as it ends, and the summary follows.")
    reporter = ProgressReporter(len(plan.jobs))
    set_reporter(reporter)
    try:
        with reporter.progress:
            if launcher == "basic":  # packs train here; the launcher then finds them finished and skips them
                _train_packs(plan)
            launch_multirun(overrides)
    except KeyboardInterrupt:
        console.print(f"\n[yellow]interrupted[/yellow]: finished runs are kept in {dirs}; the unfinished run was "
                      f"discarded. Run the same command again to resume.")
        raise typer.Exit(130)
    finally:
        set_reporter(None)
    if sweep.write_errors:
        console.print(f"[red]{len(sweep.write_errors)} record(s) could not be written[/red]: {sweep.write_errors[0]}",
                      highlight=False)
        sweep.write_errors.clear()
        raise typer.Exit(1)
    failed = []
    for out_dir in plan.out_dirs:
        _, runs = rebuild_tables(Path(out_dir))
        try:
            print_report(*make_report([Path(out_dir)]))
        except Exception as e:  # noqa: BLE001  (a report problem must not cost the sweep's results)
            console.print(f"[yellow]report skipped[/yellow]: {type(e).__name__}: {e}; the tables are complete.")
        console.print(f"tables: {out_dir}/results.csv (run × epoch), {out_dir}/runs.csv (one row per run)")
        if not runs.empty:
            failed += runs[runs["run_key"].isin(plan.keys) & (runs["status"] == "failed")].to_dict("records")
    if failed:
        for r in failed:
            console.print(f"[red]failed[/red] {r['variant']} seed={r['seed']}: {r['error']}")
        console.print(f"{len(failed)} run(s) failed; fix the cause and rerun the same command: finished runs are "
                      "skipped and failed ones retried.")
        raise typer.Exit(1)
