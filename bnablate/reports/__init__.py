"""`bnablate report`: statistics across seeds, baseline comparisons, paper tables and figures from run records."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import pandas as pd

from ..defaults import FORMATS
from ..results.schema import strict_error
from .pivot import per_epoch_table, write_per_epoch, write_pivot
from .probe import write_probe
from .html import write_html
from .metrics import in_points, metric_info
from ..same_stack import same_stack_notes
from .render import FILES, WRITERS, rich_table
from .sources import load_sources, mixed_data_notes, table_files
from ..loggers import log_report_to_trackers
from ..stats.designs import ANYTIME
from .planned import beside_anytime, choose_plan
from .summary import Report, build_report
from .tuned import load_tuned, selected_columns, sensitivity



def collect(dirs: Iterable[Path]) -> tuple[pd.DataFrame, pd.DataFrame, List[str]]:
    """results.csv- and runs.csv-shaped tables and the identifying columns of the merged runs of `dirs`."""
    src = load_sources(dirs)
    return src.results, src.runs, src.identifying


PRESET_OPTIONS = {"baseline": "no_bn", "pivot": None, "trained_above": None, "per_epoch": []}
# report.* keys of the runs' configs (bnablate/config.py ReportConfig): records written before they existed lack them
REPORT_OPTIONS = {"metric": "final_test_acc", "alpha": 0.05, "margin": None, "compare": "baseline"}


def preset_options(records: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """The report options named by the runs' configs — the sweep preset's sweep.baseline, sweep.pivot, ... and the
    report.* keys; for each, the most common value among the records — else the defaults."""
    records = list(records)
    options = dict(PRESET_OPTIONS, **REPORT_OPTIONS)
    for section, keys in (("sweep", PRESET_OPTIONS), ("report", REPORT_OPTIONS)):
        values_of = [rec["config"].get(section) or {} for rec in records]
        for key in keys:
            values = [repr(s[key]) for s in values_of if s.get(key) not in (None, [], ())]
            if values:
                options[key] = ast.literal_eval(pd.Series(values).mode().iloc[0])
    return options


def make_report(dirs: Sequence[Path], out: Optional[Path] = None, metric: Optional[str] = None,
                baseline: Optional[str] = None, target: Optional[float] = None, by: Optional[Sequence[str]] = None,
                formats: Sequence[str] = FORMATS, alpha: Optional[float] = None, pivot: Optional[str] = None,
                trained_above: Optional[float] = None, per_epoch: Optional[Sequence[str]] = None,
                strict: bool = False, margin: Optional[float] = None, compare: Optional[str] = None,
                allow_unequal_budgets: bool = False, plan: Optional[str] = None) -> tuple[Report, List[Path]]:
    """Build the report from the records in `dirs` and write it under `out` (default: first dir / report).
    metric, alpha, margin, compare, baseline, pivot, trained_above, per_epoch left None take the runs' configured
    values (`preset_options`: report.* and the sweep preset's). pivot: also a table/figure of the metric against that
    factor; per_epoch: also those metrics at every epoch. A bad file in records/ is left out and named in the notes
    (and report.bad_records); strict: a RecordError instead. A folder tuned by `sweep --tune` reports each group at
    its selected values (selected.* columns, the sensitivity figure); groups tuned under different budgets are
    refused unless allow_unequal_budgets. A folder with plans (`sweep --design`) is judged by the plan's design when
    every run belongs to it; plan: a plan's grid or hash, to judge its runs alone."""
    src = load_sources(dirs)  # read once: the preset's report options and the tables both come from them
    if strict and src.bad:
        raise strict_error(src.bad)
    preset = preset_options(src.records)
    given = {"metric": metric, "alpha": alpha, "margin": margin, "compare": compare, "baseline": baseline}
    results, runs = src.results, src.runs
    chosen, plan_notes = choose_plan(dirs, runs, preset, given, plan)
    if chosen is not None:  # its runs alone, under its design
        keep = set(chosen.keys)
        runs = runs[runs["run_key"].isin(keep)]
        results = results[results["run_key"].isin(keep)] if not results.empty else results
    metric = metric or preset["metric"]
    alpha = alpha if alpha is not None else preset["alpha"]
    margin = margin if margin is not None else preset["margin"]
    compare = compare or preset["compare"]
    baseline = baseline or preset["baseline"]
    pivot = pivot or preset["pivot"]
    trained_above = trained_above if trained_above is not None else (preset["trained_above"] if pivot == preset["pivot"]
                                                                     else None)
    per_epoch = list(per_epoch if per_epoch is not None else preset["per_epoch"])
    tuned = load_tuned(dirs)
    unequal = tuned.check_budgets(allow_unequal_budgets) if tuned is not None else None
    decision = dict(metric=metric, baseline=baseline, alpha=alpha, margin=margin, compare=compare)
    report = build_report(results, runs, src.identifying, target=target, by=by, correctness=src.correctness(),
                          not_factors=tuned.columns if tuned is not None else (),
                          design=chosen.design if chosen is not None else ANYTIME, **decision)
    if chosen is not None:
        beside_anytime(report, results, runs, src.identifying, chosen, **decision)
    report.notes[1:1] = plan_notes
    if tuned is not None and not report.summary.empty:
        selected_columns(report.summary, runs, report.by, tuned)
        report.notes[1:1] = [tuned.note()] + ([unequal] if unequal else []) + tuned.edge_notes()
    report.bad_records = src.bad
    reported = set(runs["run_key"])  # variants that are one layer stack for a model they ran on
    report.notes += same_stack_notes(rec["config"] for rec in src.records if rec.get("run_key") in reported)
    report.notes[:0] = mixed_data_notes(src)
    report.notes[:0] = [f"{b.line()}; left out of this report." for b in src.bad]
    report.notes[:0] = [f"{d} has no records/: read from its tables ({', '.join(p.name for p in table_files(d).values())}"
                        "); the sweep preset's report options are not in them, so the defaults apply unless given."
                        for d in src.from_tables]
    out = Path(out) if out is not None else Path(dirs[0]) / "report"
    written: List[Path] = []
    if report.summary.empty:
        return _in_points(report), written
    out.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        if fmt in WRITERS:
            WRITERS[fmt](report, out / FILES[fmt])
            written.append(out / FILES[fmt])
            if fmt == "csv":
                written.append(out / "comparisons.csv")
        elif fmt == "png":
            from . import plots  # matplotlib and scipy load only when figures are drawn (start-up of every command)

            written += plots.forest(report, out)
            written += plots.learning_curves(results, report, out)
            written += plots.final_metric(report, out)
            written += plots.time_to_target(report, out)
            written += sensitivity(tuned, out) if tuned is not None else []
    written += write_probe(src.records, report, runs, out, figures="png" in formats)  # runs with train.probe
    if pivot:
        frame, paths = write_pivot(report, pivot, out, trained_above)
        report.views[f"{metric} by {pivot} (mean ± 95% CI half-width)"] = frame
        written += paths
    if per_epoch:
        frame, paths = write_per_epoch(results, report.by, per_epoch, out)
        report.views["per epoch (see per_epoch.md for CIs)"] = per_epoch_table(frame, report.by, per_epoch,
                                                                                with_ci=False)
        written += paths
    if "html" in formats:  # last: it embeds the figures written above
        page = out / "index.html"
        write_html(report, page, written, command=report_command(dirs, report, formats, pivot, per_epoch),
                   files=[p.name for p in written])
        written.append(page)
    if written and src.records:  # sweeps that logged to MLflow also get the report there (loggers/mlflow.py)
        log_report_to_trackers(src.records, written)
    return _in_points(report), written


def _in_points(report: Report) -> Report:
    """The returned report's comparisons as comparisons.csv has them: differences in display points with a `unit`
    column. Last of all: the verdicts, the race and the figures above read them in the metric's own units."""
    report.comparisons = in_points(report.comparisons, metric_info(report.metric))
    return report


def report_command(dirs: Sequence[Path], report: Report, formats: Sequence[str], pivot: Optional[str],
                   per_epoch: Sequence[str]) -> str:
    """The `bnablate report` command line that rebuilds this report from the same folders."""
    args = ["bnablate report", *map(str, dirs), f"--metric {report.metric}", f"--baseline {report.baseline}",
            f"--compare {report.compare}", f"--alpha {report.alpha:g}"]
    margin = report.settings.margin_points if report.settings else None
    args += [f"--margin {margin:g}"] if margin is not None else []
    args += [f"--pivot {pivot}"] if pivot else []
    args += [f"--per-epoch {','.join(per_epoch)}"] if per_epoch else []
    return " ".join(args + [f"--format {','.join(formats)}"])


__all__ = ["FORMATS", "Report", "build_report", "collect", "make_report", "preset_options", "rich_table"]
