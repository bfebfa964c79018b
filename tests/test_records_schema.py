"""The record schema: one reader for report, verify, resume and tables; bad files named, quarantined, never dropped."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.results.records import SCHEMA_VERSION
from bnablate.results.schema import QUARANTINE_DIR, RecordVersionError, scan_records

SWEEP = ["model=mlp", "train.epochs=1", "train.batch_size=32", "variant=no_bn,bn_pre_act", "seed=range(2)"]
GOLDEN = Path(__file__).parent / "golden" / "v1"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, terminal_width=200)


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """A finished sweep folder (digits, 2 variants × 2 seeds); each test works on its own copy."""
    base = tmp_path_factory.mktemp("sweep")
    res = CliRunner().invoke(app, ["sweep", *SWEEP, f"out_dir={base / 'runs'}"], catch_exceptions=False,
                             env={"BNABLATE_CACHE_DIR": str(base / "cache"), "BNABLATE_DATA_ROOT": str(base)})
    assert res.exit_code == 0, res.output
    return base / "runs"


@pytest.fixture
def runs(finished_sweep, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(finished_sweep, folder)
    return folder


def _records(folder):
    return sorted((folder / "records").glob("*.json"))


def test_records_carry_the_schema_version_and_old_records_read_as_version_1(runs):
    assert {json.loads(p.read_text())["schema_version"] for p in _records(runs)} == {SCHEMA_VERSION}
    old = scan_records(GOLDEN)
    assert len(old.records) == 4 and not old.bad and all("schema_version" not in r for r in old.records)


def test_a_truncated_record_is_named_by_report_and_quarantined_and_retrained_by_the_sweep(runs):
    victim = _records(runs)[0]
    broken = victim.read_bytes()[:100]
    victim.write_bytes(broken)
    rep = invoke("report", runs, "--format", "csv,md")
    assert rep.exit_code == 0, rep.output
    assert f"warning: {victim}: not valid JSON" in rep.output and "truncated?" in rep.output
    assert f"note: {victim}: not valid JSON" in rep.output  # the report's notes list it too
    assert f"{victim}: not valid JSON" in (runs / "report" / "summary.md").read_text()
    strict = invoke("report", runs, "--strict", "--format", "csv")
    assert strict.exit_code == 2 and "1 bad record file(s) (--strict)" in strict.output and str(victim) in strict.output
    again = invoke("sweep", *SWEEP, f"out_dir={runs}")
    assert again.exit_code == 0, again.output
    assert "3 already completed there" in again.output
    assert "1 bad record file(s) found, moved to records/quarantine/ with their bytes intact" in again.output
    moved = list((runs / "records" / QUARANTINE_DIR).iterdir())
    assert len(moved) == 1 and moved[0].name.startswith(victim.name + ".") and moved[0].read_bytes() == broken
    assert json.loads(victim.read_text())["status"] == "ok"  # its run trained again
    assert not scan_records(runs).bad and len(scan_records(runs).records) == 4


def test_a_json_file_that_is_not_a_record_is_a_warning_not_a_crash(runs):
    stray = runs / "records" / "notes.json"
    stray.write_text("{}")
    rep = invoke("report", runs, "--format", "csv")
    assert rep.exit_code == 0 and f"warning: {stray}: not a run record (no run_key)" in rep.output
    ver = invoke("verify", runs, "--sample", "1")
    assert ver.exit_code == 0 and f"warning: {stray}: not a run record" in ver.output
    strict = invoke("verify", runs, "--strict")
    assert strict.exit_code == 2 and "--strict" in strict.output and "Traceback" not in strict.output
    assert stray.read_text() == "{}"  # report and verify never move or change a file


@pytest.mark.parametrize("edit,problem", [
    (lambda r: r.update(status="finished"), "status 'finished' is none of ok, diverged, failed, pruned"),
    (lambda r: r["config"]["optim"].update(lr=0.5), "its config hashes to run key"),
    (lambda r: r["metrics"][0].pop("test_acc"), "epoch row 1 lacks a number for test_acc"),
    (lambda r: r["config"].pop("seed"), "its config lacks seed"),
])
def test_an_invalid_record_says_what_is_wrong(runs, edit, problem):
    path = _records(runs)[1]
    rec = json.loads(path.read_text())
    edit(rec)
    path.write_text(json.dumps(rec))
    scan = scan_records(runs)
    assert [(b.path, b.problem.split(" (")[0] if "hashes" not in problem else b.problem[:len(problem)])
            for b in scan.bad] == [(path, problem)]


def test_a_renamed_record_is_caught(runs):
    path = _records(runs)[0]
    path.rename(path.with_name("0123456789abcdef.json"))
    assert "is named 0123456789abcdef.json" in scan_records(runs).bad[0].problem


def test_a_record_from_a_newer_schema_version_is_a_clear_error_everywhere(runs):
    path = _records(runs)[0]
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(RecordVersionError, match="Upgrade bnablate"):
        scan_records(runs)
    for args in (["report", runs], ["verify", runs], ["sweep", *SWEEP, f"out_dir={runs}"]):
        res = invoke(*args)
        assert res.exit_code == 2 and f"version-{SCHEMA_VERSION + 1} run record" in res.output, args
        assert "Traceback" not in res.output and "KeyError" not in res.output


def test_a_negative_seed_is_refused_before_training(tmp_path):
    res = invoke("run", "seed=-1", "train.epochs=1")
    assert res.exit_code == 2 and "seed must be an integer in [0, 2**32 - 1]" in res.output
    assert not (tmp_path / "runs").exists()
