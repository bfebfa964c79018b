"""report/index.html: one self-contained page (figures embedded, no server, no network) rendered with Jinja2."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import List, Sequence

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from ..atomic import atomic_write_text
from .render import display_frame
from .summary import Report

TEMPLATE = "index.html.j2"  # bnablate/reports/templates/


def _table(frame: pd.DataFrame, text_columns: Sequence[str]) -> str:
    """An HTML table of strings (pandas escapes the cells); text columns left-aligned, numbers right."""
    html = frame.astype(str).to_html(index=False, border=0, escape=True)
    for col in text_columns:  # mark the header and cells of text columns (CSS aligns them left)
        html = html.replace(f"<th>{col}</th>", f'<th class="text">{col}</th>')
    return html


def write_html(report: Report, path: Path, figures: Sequence[Path], command: str, files: Sequence[str]) -> None:
    """Render the report into `path`: the summary (sortable), notes, every PNG figure embedded as a data URI, the
    pivot/per-epoch views, and the command that made it."""
    env = Environment(loader=PackageLoader("bnablate.reports", "templates"), autoescape=select_autoescape())
    unit = " (%)" if "acc" in report.metric else ""
    figs: List[dict] = [{"name": p.stem, "src": "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()}
                        for p in figures if p.suffix == ".png"]
    page = env.get_template(TEMPLATE).render(
        title=f"{report.metric}{unit} by {', '.join(report.by)}",
        caption=f"Mean ± 95% CI half-width over seeds; baseline {report.baseline}; Holm-corrected p at "
                f"α={report.alpha}.",
        summary_table=_table(display_frame(report), [*report.by, "verdict", "test"]),
        notes=report.notes, figures=figs,
        views=[{"title": title, "table": _table(frame, report.by)} for title, frame in report.views.items()],
        commands=[command], files=sorted(files))
    atomic_write_text(path, page)
