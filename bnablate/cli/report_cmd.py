"""`bnablate report`: statistics across seeds, baseline comparisons, tables and figures for one or more run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ..defaults import FORMATS
from .common import console, fail

if TYPE_CHECKING:  # pandas and the statistics: imported when a report is made, not for `--help`
    from ..reports.summary import Report


def warn_bad_records(bad) -> None:
    """One warning line per bad file of records/ (schema.BadRecord), naming it and what is wrong."""
    for item in bad:
        console.print(f"[yellow]warning[/yellow]: {item.line()}; left out.", highlight=False, soft_wrap=True)


def print_report(report: Report) -> None:
    from ..reports.render import rich_comparisons, rich_table

    console.print(rich_table(report))
    if report.compare == "pairs" and not report.comparisons.empty:
        console.print(rich_comparisons(report))
    for title, frame in report.views.items():
        table = Table(title=title, title_justify="left")
        for c in frame.columns:
            table.add_column(str(c), justify="right" if c not in report.by else "left")
        for row in frame.itertuples(index=False):
            table.add_row(*[str(v) for v in row])
        console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    if report.files:
        folder = report.files[0].parent
        console.print(f"report: {folder}/ ({', '.join(sorted({p.name for p in report.files}))})", highlight=False)


def report_cmd(
    runs_dirs: Annotated[List[Path], typer.Argument(help="Run folders (e.g. runs/placement); several are merged.")],
    metric: Annotated[Optional[str], typer.Option(
        help="Metric to rank, test and plot (a runs.csv column; default: the runs' report.metric, final_test_acc).")
    ] = None,
    baseline: Annotated[Optional[str], typer.Option(
        help="Variant every other variant is compared with, or COLUMN=VALUE to compare another factor's values within "
             "each variant (e.g. finetune.bn=train) (default: the sweep preset's sweep.baseline, else no_bn).")] = None,
    target: Annotated[Optional[float], typer.Option(
        help="Validation accuracy for time-to-target (default: each dataset's dataset.target_acc).")] = None,
    by: Annotated[Optional[str], typer.Option(
        help="Comma-separated grouping columns (default: dataset, model, variant + every factor that varies).")] = None,
    format: Annotated[str, typer.Option(
        "--format", help=f"Comma-separated outputs from {', '.join(FORMATS)} (png = figures as PNG and PDF; html = report/index.html, one self-contained page).")] = ",".join(FORMATS),
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: FIRST_RUNS_DIR/report).")] = None,
    alpha: Annotated[Optional[float], typer.Option(
        help="Family-wise error rate of the verdicts, in (0, 1) (default: the runs' report.alpha, 0.05).")] = None,
    margin: Annotated[Optional[float], typer.Option(
        help="Equivalence margin in metric points, declared before looking (1.0 = 1 percentage point of accuracy; "
             "default: the runs' report.margin, else 1.0 for accuracies and none for other metrics).")] = None,
    compare: Annotated[Optional[str], typer.Option(
        help="baseline: every group vs --baseline; pairs: all pairs of groups in each family; best: all pairs and "
             "which group is best within the margin (default: the runs' report.compare, baseline).")] = None,
    pivot: Annotated[Optional[str], typer.Option(
        help="Also tabulate and plot the metric against this factor (e.g. lr, batch_size): pivot_<factor>.* "
             "(default: the sweep preset's sweep.pivot).")] = None,
    trained_above: Annotated[Optional[float], typer.Option(
        help="With a pivot: the largest factor value whose mean metric is at least this, with no diverged run.")] = None,
    per_epoch: Annotated[Optional[str], typer.Option(
        help="Comma-separated per-epoch metrics (e.g. train_loss,test_acc) to tabulate at every epoch: per_epoch.* "
             "(default: the sweep preset's sweep.per_epoch).")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail (exit 2) when a file in records/ is unreadable or not a valid record, instead of "
                         "warning and leaving it out.")] = False,
    allow_unequal_budgets: Annotated[bool, typer.Option(
        "--allow-unequal-budgets", help="Report groups that `sweep --tune` tuned under different grids or budgets "
                                        "(refused by default: the better-tuned side would be favoured).")] = False,
    plan: Annotated[Optional[str], typer.Option(
        help="A plan's grid or hash (OUT_DIR/plans/): judge that plan's runs alone with its pre-registered design "
             "(a folder whose runs all belong to one plan uses it without this).")] = None,
) -> None:
    """Group runs by the factors that vary, report mean ± 95% CI per group, and compare groups (with a baseline, or all
    pairs) on the seeds both have: each comparison is better, worse, equivalent (within the margin) or undecided, read
    off an anytime-valid interval (or the plan's design) with the family's error rate ≤ alpha. Writes summary/comparisons.csv, .md, .tex,
    figures (the forest plot first) and index.html."""
    from .. import api

    formats = [f.strip() for f in format.split(",") if f.strip()]
    try:
        report = api.report(runs_dirs, out=out, metric=metric, baseline=baseline, target=target,
                            by=[c.strip() for c in by.split(",")] if by else None, formats=formats, alpha=alpha,
                            pivot=pivot, trained_above=trained_above,
                            per_epoch=[m.strip() for m in per_epoch.split(",") if m.strip()] if per_epoch else None,
                            strict=strict, margin=margin, compare=compare,
                            allow_unequal_budgets=allow_unequal_budgets, plan=plan)
    except ValueError as e:
        fail(str(e))
    warn_bad_records(report.bad_records)
    if report.summary.empty:
        fail(f"No runs in {', '.join(map(str, runs_dirs))}" +
             (f": every record there is bad ({len(report.bad_records)} file(s), named above)." if report.bad_records
              else "."))
    print_report(report)
