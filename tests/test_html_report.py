"""report/index.html: self-contained (figures embedded, nothing fetched), every summary row, the notes, the command."""

import base64
from html.parser import HTMLParser

import pandas as pd
from typer.testing import CliRunner

from bnablate.cli import app


class Page(HTMLParser):
    """What the page holds: image sources, link/script sources, and the text of each table row."""

    def __init__(self):
        super().__init__()
        self.images, self.external, self.rows, self._row = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if tag != "img" and attrs.get(key):
                self.external.append(attrs[key])
        if tag == "tr":
            self._row = []

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(" ".join(self._row))
            self._row = None

    def handle_data(self, data):
        if self._row is not None and data.strip():
            self._row.append(data.strip())


def test_html_report_embeds_every_figure_and_lists_every_summary_row(tmp_path):
    sweep = ["sweep", "model=mlp", "train.epochs=2", "variant=no_bn,bn_pre_act", "seed=range(2)", "out_dir=runs/h"]
    assert CliRunner().invoke(app, sweep, catch_exceptions=False).exit_code == 0
    report = tmp_path / "runs" / "h" / "report"
    page = Page()
    page.feed((report / "index.html").read_text())
    pngs = sorted(report.glob("*.png"))
    assert len(page.images) == len(pngs) >= 3  # every figure the report wrote, embedded
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.external == []  # no link, script or stylesheet fetched from anywhere: it opens offline
    summary = pd.read_csv(report / "summary.csv")
    for _, row in summary.iterrows():  # each summary row is a table row, with its group and seed count
        assert any(row["variant"] in r.split() and f"{row['dataset']} {row['model']} {row['variant']} "
                   f"{row['n_seeds']}" in r for r in page.rows), row["variant"]
    text = (report / "index.html").read_text()
    assert "Numerics: fp32." in text  # the notes
    assert "bnablate report runs/h --metric final_test_acc --baseline no_bn --compare baseline" in text  # how
    # the verdicts come first: the forest plot, then one row per comparison, before the summary
    assert text.index("<h2>Verdicts</h2>") < text.index('alt="forest plot"') < text.index("<h2>Summary</h2>")
    assert any(r.startswith("digits · mlp bn_pre_act no_bn 2") and r.split()[-1] in
               ("better", "worse", "equivalent", "undecided") or "undecided (" in r for r in page.rows)
    assert "margin ±1 pts" in text


def test_html_without_figures_says_so(tmp_path):
    sweep = ["sweep", "model=mlp", "train.epochs=1", "variant=no_bn,bn_pre_act", "seed=range(2)", "out_dir=runs/n"]
    assert CliRunner().invoke(app, sweep, catch_exceptions=False).exit_code == 0
    res = CliRunner().invoke(app, ["report", "runs/n", "--format", "html", "--out", "runs/n/only"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "runs/n/only").iterdir()) == ["index.html"]
    assert "No figures: this report was written without the png format." in (tmp_path / "runs/n/only/index.html").read_text()


def test_pairs_mode_shows_a_matrix_of_verdicts(tmp_path):
    sweep = ["sweep", "model=mlp", "train.epochs=1", "variant=no_bn,bn_pre_act,bn_post_act", "seed=range(2)",
             "report.compare=pairs", "out_dir=runs/p"]
    res = CliRunner().invoke(app, sweep, catch_exceptions=False, terminal_width=200)
    assert res.exit_code == 0 and "all pairs (the verdict reads A against B)" in res.output, res.output
    text = (tmp_path / "runs/p/report/index.html").read_text()
    assert 'class="matrix"' in text and text.count('<td class="undecided">?</td>') == 6  # 3 pairs, both ways
    md = (tmp_path / "runs/p/report/summary.md").read_text()
    assert "row vs column (> better, < worse, ≈ equivalent, ? undecided)" in md
