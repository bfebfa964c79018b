"""docs/configuration.md is the schema rendered (`make docs`): current, and naming every key once."""

from pathlib import Path

from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import KEYS
from bnablate.config_doc import render

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_configuration_reference_is_current():
    assert DOC.read_text() == render(), "docs/configuration.md is stale: run `make docs` and commit it"


def test_every_key_is_documented_once_with_its_role():
    text = DOC.read_text()
    for spec in KEYS.specs:
        rows = [line for line in text.splitlines() if line.startswith(f"| `{spec.key}`")]
        assert len(rows) == 1, spec.key
        assert f"| {spec.role.value}" in rows[0] and spec.doc, spec.key


def test_list_options_shows_roles_and_defaults():
    res = CliRunner().invoke(app, ["list", "options"], terminal_width=250)
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if "train.precision" in line)
    assert "fp32" in row and "result" in row and "neutral" in row
    assert any("out_dir" in line and "location" in line for line in res.output.splitlines())
