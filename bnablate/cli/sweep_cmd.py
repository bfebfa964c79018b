"""`bnablate sweep`: a grid of runs through Hydra's multirun, with progress, resume and a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Dict, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..defaults import (DEFAULT_MAX_SEEDS, DEFAULT_RANGE_TRIALS, DEFAULT_SEED_STEP, DEFAULT_TUNE_METRIC,
                        DEFAULT_TUNE_SEEDS, DEFAULT_WAIT_TIMEOUT, DESIGNS, GOALS, TUNE_METRICS, TUNE_PRUNERS,
                        TUNE_SAMPLERS)
from ..errors import ConfigError
from ..registry import UnknownNameError
from ..reporter import Reporter
from .common import complete_override, console, fail
from .eta import EtaColumn, RunShares
from .report_cmd import print_report

SWEEP_HELP = ("Hydra overrides and sweeps: sweep=NAME picks a preset from conf/sweep; variant=a,b seed=range(5) "
              "builds a grid (the command line wins over the preset per key); hydra/launcher=joblib runs jobs in "
              "parallel.")


def _label(cfg) -> str:
    from ..variants import config_label  # the config schema (Hydra): loaded by a sweep, not by `--help`

    return config_label(cfg)


class ProgressReporter(Reporter):
    """Rich progress: runs done/total with ETA (from the first epoch on: eta.RunShares), and the current run's
    epochs. clock: the bar's clock (seconds; default time.monotonic)."""

    def __init__(self, total: int, clock: Optional[Callable[[], float]] = None) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), EtaColumn(), console=console,
                                 **({"get_time": clock} if clock else {}))
        self.runs = self.progress.add_task("runs", total=total)
        self.shares = RunShares(self.progress.get_time)
        self.epochs = self.progress.add_task("epochs", total=1, visible=False)
        self.done = 0
        self.seen: set = set()  # run keys already counted (a packed run is later skipped by the launcher)
        self.labels: Dict[str, str] = {}  # run key → what tells it apart beyond variant and seed (SweepPlan.run_labels)

    def label(self, key: str) -> str:
        """' optim.lr=0.003' for a run whose plan varies more than variant and seed (a tuning candidate), else ''."""
        extra = self.labels.get(key, "")
        return f" {extra}" if extra else ""

    def run_started(self, cfg, key: str, pack: int = 1) -> None:
        who = f"{self.label(key)} seed={cfg.seed}" if pack == 1 else f" {pack} runs packed"
        self.progress.reset(self.epochs, total=int(cfg.train.epochs), visible=True,
                            description=f"  {_label(cfg)}{who}")
        self.shares.started(pack, int(cfg.train.epochs))

    def epoch_done(self, row: Dict[str, Any]) -> None:
        self.progress.advance(self.epochs)
        self.shares.epoch()
        self._show()

    def _show(self) -> None:
        """The runs bar at its fractional count, and the ETA."""
        self.progress.update(self.runs, completed=self.shares.completed,
                             eta_end=self.shares.eta_end(self.progress.tasks[0].total or 0))

    def run_done(self, record: Dict[str, Any]) -> None:
        if record["run_key"] in self.seen:
            return
        self.seen.add(record["run_key"])
        self.done += 1
        self.shares.ended(trained_here=not record.get("skipped"))
        self._show()
        cfg, m = record["config"], record.get("metrics") or []
        what = f"{record.get('variant') or _label(cfg)}{self.label(record['run_key'])} seed={cfg['seed']}"
        if record["status"] == "running elsewhere":
            outcome = ("being trained by another process into this folder, skipped (a look or the tuning selection "
                       "waits for it; a plain sweep: rerun later to report it)")
        elif record.get("skipped"):
            outcome = "already done, skipped"
        elif record["status"] == "failed":
            outcome = f"[red]failed[/red]: {record['error']}"
        elif record["status"] == "pruned":
            outcome = (f"pruned at epoch {record['pruned']['epoch']} by the {record['pruned']['pruner']} pruner, "
                       f"val_acc={m[-1]['val_acc']:.4f}")
        else:
            outcome = f"{record['status']}, test_acc={m[-1]['test_acc']:.4f} ({record['wall_time_s']:.1f}s)" if m else record["status"]
        self.progress.console.print(f"[{self.done}/{self.progress.tasks[0].total}] {cfg['model']['name']} "
                                    f"{cfg['dataset']['name']} {what}: {outcome}", highlight=False)


class SweepReporter(ProgressReporter):
    """ProgressReporter that also prints the plan before training starts (runs, folders, resumed runs, launcher)."""

    plan = None

    def sweep_planned(self, plan) -> None:
        from ..results.schema import QUARANTINE_DIR

        self.plan = plan
        self.labels.update(plan.run_labels())
        self.progress.reset(self.runs, total=len(plan.jobs))
        done = plan.finished_count()
        bad = plan.quarantined
        console.print(f"sweep: {len(plan.jobs)} runs → {self.dirs}" +
                      (f"; {done} already completed there, skipping them (delete the records to retrain)"
                       if done else "") +
                      (f"; {len(bad)} bad record file(s) found, moved to records/{QUARANTINE_DIR}/ with their bytes "
                       f"intact, and their runs retrain" if bad else ""), highlight=False, soft_wrap=True)
        for note in plan.repeats_note():
            console.print(f"note: {note}", highlight=False, soft_wrap=True)
        for note in plan.mixing():
            console.print(f"[yellow]warning[/yellow]: {note}", highlight=False, soft_wrap=True)
        for item, moved in bad:
            console.print(f"[yellow]quarantined[/yellow] {item.line()} → {moved}", highlight=False, soft_wrap=True)
        if plan.launcher != "basic":
            console.print(f"launcher {plan.launcher}: runs execute in its worker processes, so per-run progress is "
                          "not shown here; each run's record appears in records/ as it ends, and the summary follows.")
        self.progress.start()

    @property
    def dirs(self) -> str:
        return ", ".join(str(d) for d in self.plan.out_dirs)

    def pack_failed(self, size: int, error: BaseException) -> None:
        console.print(f"[yellow]pack of {size} not trained as a pack[/yellow] ({type(error).__name__}: {error}); "
                      "running its runs one by one.")

    def runs_added(self, plan) -> None:
        self.labels.update(plan.run_labels())
        self.progress.update(self.runs, total=self.progress.tasks[0].total + len(plan.jobs))

    def waiting_for_runs(self, line: str) -> None:
        self.progress.console.print(line, highlight=False, soft_wrap=True)

    def tuning_done(self, selection, spec) -> None:
        for _, r in selection.table.iterrows():
            chosen = ", ".join(f"{k}={r[f'selected.{k}']}" for k in spec.keys if r[f"selected.{k}"])
            what = f"{chosen} ({spec.metric} {100 * float(r['score']):.2f})" if chosen else "every candidate failed"
            self.progress.console.print(f"tuned {r['group']} ({r['context']}): {what}", highlight=False,
                                        soft_wrap=True)

    def plan_declared(self, plan) -> None:
        from ..preregister import forecast_lines

        for line in [f"declared {plan.describe()}", *forecast_lines(plan)]:
            self.progress.console.print(line, highlight=False, soft_wrap=True)

    def look_done(self, look) -> None:
        counts = look.counts()
        verdicts = ", ".join(f"{counts[v]} {v}" for v in ("better", "worse", "equivalent", "undecided") if v in counts)
        line = f"[bold]look {look.index}[/bold] at {len(look.seeds)} seeds: {verdicts or 'no comparisons'}"
        for fam, r in look.races.items():
            out = ", ".join(f"{g} (worse than {w})" for g, w in r.eliminated.items())
            line += f"; race {fam}: {r.claim('the margin') if r.done else 'in the race: ' + ', '.join(r.survivors)}" + \
                (f"; out: {out}" if out else "")
        if look.new_seeds:
            line += f" → seeds {', '.join(map(str, look.new_seeds))} for {'; '.join(look.active_labels())}"
        else:
            line += f" → stop: {look.stop}"
            if look.stop.startswith("--max-seeds"):
                open_ = look.comparisons[look.comparisons["verdict"] == "undecided"]
                line += "; undecided at the cap: " + "; ".join(
                    f"{a} vs {b} (~{'> 2000' if n == float('inf') else f'{n:.0f}'} seeds needed)"
                    for a, b, n in zip(open_["a"], open_["b"], open_["seeds_needed"]))
        self.progress.console.print(line, highlight=False, soft_wrap=True)


def sweep_cmd(overrides: Annotated[Optional[List[str]], typer.Argument(help=SWEEP_HELP, autocompletion=complete_override)] = None,
              dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every job (data included) and print the "
                                                    "plan — jobs, packs and lone runs with the reason for each, "
                                                    "finished runs — and its bill (runs per phase, estimated wall "
                                                    "time), without training or writing anything.")] = False,
              calibrate: Annotated[bool, typer.Option(
                  "--calibrate/--no-calibrate", help="--dry-run: time a few training steps of each architecture "
                                                     "without finished runs in the folder, for the bill's estimate "
                                                     "(seconds each).")] = True,
              until_decided: Annotated[bool, typer.Option(
                  "--until-decided", help="After the grid, add seeds only to the groups of comparisons that are still "
                                          "undecided (better/worse/equivalent, as the report decides with report.* "
                                          "and sweep.baseline) and look again, until all are decided or --max-seeds; "
                                          "every look is logged to OUT_DIR/decisions.csv.")] = False,
              max_seeds: Annotated[Optional[int], typer.Option(
                  help=f"--until-decided: at most this many seeds per group (default {DEFAULT_MAX_SEEDS}); a fixed "
                       "design's budget.")] = None,
              seed_step: Annotated[int, typer.Option(
                  help="--until-decided: seeds added per look once a verdict is possible (the first look after the "
                       "grid jumps to the fewest seeds that can decide; they train as a pack where packing applies).")
              ] = DEFAULT_SEED_STEP,
              goal: Annotated[Optional[str], typer.Option(
                  help=f"What to decide ({' | '.join(GOALS)}; report.compare): every variant vs sweep.baseline, "
                       "all pairs, or the best variant — a race whose losers get no more seeds.")] = None,
              design: Annotated[Optional[str], typer.Option(
                  help=f"Pre-register the design ({' | '.join(DESIGNS)}) in OUT_DIR/plans/ before training (implies "
                       "--until-decided): "
                       "anytime (valid however seeds are added), fixed (one look at --max-seeds: the paired t) or "
                       "sequential (--looks, α-spending); docs/statistics.md.")] = None,
              looks: Annotated[Optional[str], typer.Option(
                  help="--design sequential: the planned seed counts, e.g. 5,7,9 (the last is the budget).")] = None,
              spending: Annotated[str, typer.Option(
                  help="--design sequential: obf (Lan–DeMets O'Brien–Fleming) or pocock α-spending.")] = "obf",
              tune: Annotated[Optional[List[str]], typer.Option(
                  help="KEY=V1,V2,… (repeatable; a grid over several keys): first train every value on --tune-seeds "
                       "tuning seeds into OUT_DIR/tuning, choose per variant on the validation split, then train "
                       "each variant at its own choice on the sweep's seeds (docs/sweeps.md).")] = None,
              tune_seeds: Annotated[int, typer.Option(
                  help="--tune: tuning seeds per candidate (1000, 1001, …; never evaluation seeds).")
              ] = DEFAULT_TUNE_SEEDS,
              tune_mode: Annotated[str, typer.Option(
                  help="--tune: per-variant (each variant its own best value) or shared (one value for all, by the "
                       "mean over variants).")] = "per-variant",
              tune_metric: Annotated[str, typer.Option(
                  help=f"--tune: the validation metric that chooses ({', '.join(TUNE_METRICS)}).")
              ] = DEFAULT_TUNE_METRIC,
              wait_timeout: Annotated[float, typer.Option(
                  help="--until-decided/--tune: seconds a look or the tuning selection waits for runs another sweep "
                       "process sharing the folder is training (live claims in records/), then exit status 2; 0: do "
                       "not wait. Runs whose process died are trained here.")] = DEFAULT_WAIT_TIMEOUT,
              tune_trials: Annotated[Optional[int], typer.Option(
                  help="--tune with a range or a sampler: trials per variant, the declared budget (a trial is one "
                       f"value on every tuning seed; default {DEFAULT_RANGE_TRIALS} for a range, every point for a "
                       "list).")] = None,
              tune_sampler: Annotated[Optional[str], typer.Option(
                  help=f"--tune: {' | '.join(TUNE_SAMPLERS)} (Optuna; default grid for lists, tpe for a range).")
              ] = None,
              tune_pruner: Annotated[str, typer.Option(
                  help=f"--tune: {' | '.join(TUNE_PRUNERS)}: stop a trial whose per-epoch validation score trails "
                       "(Optuna's MedianPruner, SuccessiveHalvingPruner).")] = "none",
              ) -> None:
    """Train a grid of runs (default: the `placement` preset on digits), resuming finished runs, then summarize."""
    from .. import api  # here, not at the top: `--help` and completion must not wait for torch and pandas
    from ..data import DataError
    from ..plans import PlanError
    from ..results.records import OutputError
    from ..results.schema import RecordError
    from ..schedule import make_schedule
    from ..sequential import check_until_decided, decidable_lines, describe_rule
    from ..tuning import check_tune, parse_tune, plan_tuning
    from .compose import CONFIG_ERRORS, explain

    overrides = list(overrides or [])
    reporter = SweepReporter(0)
    try:
        look_counts = _looks(looks)
        schedule = make_schedule(design or "anytime", max_seeds, seed_step, look_counts, spending)
        spec = parse_tune(tune, tune_seeds, tune_mode, tune_metric, tune_sampler, tune_pruner,
                          tune_trials) if tune else None
        if dry_run:
            sweep_plan = api.plan(api.with_goal(overrides, goal))
            lines = sweep_plan.describe()
            tuning = None
            if spec is not None:
                check_tune(sweep_plan, spec)
                tuning = plan_tuning(sweep_plan, spec)[0]  # every tuning job composed and checked too
                lines.append(f"then {spec.describe()}, before the evaluation runs above train at each variant's "
                             "selected values")
            if until_decided or design is not None:
                settings = check_until_decided(sweep_plan, schedule)
                lines += [describe_rule(schedule), *decidable_lines(sweep_plan, schedule, settings)]
                if design is not None and spec is not None:
                    lines.append("the plan is declared in plans/ once tuning has chosen each variant's values (its "
                                 "run keys are those of the evaluation runs), before any of them trains")
                elif design is not None:
                    from ..preregister import draft, first_look, forecast_lines

                    body = draft(first_look(sweep_plan, schedule), schedule, settings)
                    lines += [f"would declare {body.describe()} in plans/{body.grid}.json", *forecast_lines(body)]
                elif spec is None:
                    from ..preregister import anytime_forecast, anytime_forecast_lines

                    lines += anytime_forecast_lines(anytime_forecast(sweep_plan, schedule, settings),
                                                    schedule.max_seeds, settings)
            from ..same_stack import same_stack_notes

            lines += [f"same layers: {line}" for line in same_stack_notes(sweep_plan.configs)]
            from ..billing import make_bill

            lines += make_bill(sweep_plan, schedule if until_decided or design is not None else None, spec, tuning,
                               calibrate=calibrate).lines()
            for line in lines:
                console.print(line, highlight=False, soft_wrap=True)
            return
        if spec is not None:
            console.print(spec.describe(), highlight=False, soft_wrap=True)
        runs = api.sweep(overrides, reporter=reporter, until_decided=until_decided, max_seeds=max_seeds,
                         seed_step=seed_step, tune=tune or (), tune_seeds=tune_seeds, tune_mode=tune_mode,
                         tune_metric=tune_metric, tune_trials=tune_trials, tune_sampler=tune_sampler,
                         tune_pruner=tune_pruner, design=design, looks=look_counts, spending=spending, goal=goal,
                         wait_timeout=wait_timeout)
    except (ConfigError, UnknownNameError, DataError, RecordError, PlanError) as e:
        fail(str(e))
    except CONFIG_ERRORS as e:
        fail(explain(e, overrides))
    except OutputError as e:
        if reporter.plan is None:  # the folder cannot take results: refused before training
            fail(str(e))
        reporter.progress.stop()  # a record could not be written: every other run is kept
        console.print(f"[red]{e}[/red]", highlight=False)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        reporter.progress.stop()
        console.print(f"\n[yellow]interrupted[/yellow]: finished runs are kept in {reporter.dirs}; the unfinished run "
                      f"was discarded. Run the same command again to resume.")
        raise typer.Exit(130)
    reporter.progress.stop()
    for out_dir in reporter.plan.out_dirs:
        _summarize(out_dir, runs.attrs.get("plan"))
    failed = runs[runs["status"] == "failed"].to_dict("records")
    if failed:
        for r in failed:
            console.print(f"[red]failed[/red] {r['variant']} seed={r['seed']}: {r['error']}")
        console.print(f"{len(failed)} run(s) failed; fix the cause and rerun the same command: finished runs are "
                      "skipped and failed ones retried.")
        raise typer.Exit(1)


def _looks(text: Optional[str]) -> List[int]:
    """--looks 5,7,9 as seed counts; ConfigError naming the fix."""
    if not text:
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--looks {text!r}: give seed counts separated by commas, e.g. --looks 5,7,9.") from None


def _summarize(out_dir: Path, plan: Optional[str] = None) -> None:
    from .. import api

    try:
        print_report(api.report(out_dir, plan=plan) if plan else api.report(out_dir))
    except Exception as e:  # noqa: BLE001  (a report problem must not cost the sweep's results)
        console.print(f"[yellow]report skipped[/yellow]: {type(e).__name__}: {e}; the tables are complete.")
    console.print(f"tables: {out_dir}/results.csv (run × epoch), {out_dir}/runs.csv (one row per run)")
