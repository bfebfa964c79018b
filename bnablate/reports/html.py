"""report/index.html: one self-contained page (figures embedded, no server, no network) rendered with Jinja2: the
verdicts and the forest plot first, then the summary, notes, figures and views."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import List, Sequence

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from ..atomic import atomic_write_text
from .render import comparisons_frame, display_frame, header, matrix
from .summary import Report

TEMPLATE = "index.html.j2"  # bnablate/reports/templates/
VERDICT_CLASS = {">": "better", "<": "worse", "≈": "equivalent", "?": "undecided"}


def _table(frame: pd.DataFrame, text_columns: Sequence[str]) -> str:
    """An HTML table of strings (pandas escapes the cells); text columns left-aligned, numbers right."""
    html = frame.astype(str).to_html(index=False, border=0, escape=True)
    for col in text_columns:  # mark the header and cells of text columns (CSS aligns them left)
        html = html.replace(f"<th>{col}</th>", f'<th class="text">{col}</th>')
    return html


def _matrix(report: Report, family: str) -> str:
    """The pairwise verdicts of a family as a small table, each cell coloured by its verdict."""
    grid = matrix(report, family)
    head = "".join(f'<th class="text">{name}</th>' for name in [""] + list(grid.columns))
    rows = "".join(f'<tr><th class="text">{name}</th>' + "".join(
        f'<td class="{VERDICT_CLASS.get(v, "")}">{v}</td>' for v in row) + "</tr>" for name, row in grid.iterrows())
    return f'<table class="matrix"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _png(p: Path) -> dict:
    return {"name": p.stem, "src": "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()}


def write_html(report: Report, path: Path, figures: Sequence[Path], command: str, files: Sequence[str]) -> None:
    """Render the report into `path`: the verdicts (table, forest plot, pairwise matrices), the summary (sortable),
    notes, every other PNG figure embedded as a data URI, the pivot/per-epoch views, and the command that made it."""
    env = Environment(loader=PackageLoader("bnablate.reports", "templates"), autoescape=select_autoescape())
    pngs = [p for p in figures if p.suffix == ".png"]
    forest = [_png(p) for p in pngs if p.stem == "forest"]
    figs: List[dict] = [_png(p) for p in pngs if p.stem != "forest"]
    comps = comparisons_frame(report)
    families = list(dict.fromkeys(report.comparisons["family"])) if not report.comparisons.empty else []
    page = env.get_template(TEMPLATE).render(
        title=f"{report.metric}{' (%)' if 'acc' in report.metric else ''} by {', '.join(report.by)}",
        caption=header(report) + ".",
        verdicts_table=_table(comps, ["family", "A", "B", "verdict (A vs B)"]) if not comps.empty else "",
        forest=forest[0] if forest else None,
        matrices=[{"family": f, "table": _matrix(report, f)} for f in families] if report.compare == "pairs" else [],
        summary_table=_table(display_frame(report), [*report.by, "verdict"]),
        notes=report.notes, figures=figs,
        views=[{"title": title, "table": _table(frame, report.by)} for title, frame in report.views.items()],
        commands=[command], files=sorted(files))
    atomic_write_text(path, page)
