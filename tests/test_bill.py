"""The bill of a sweep before it trains (`sweep --dry-run`, `bnablate.bill`): runs per phase less finished ones, the
time estimate's source and scaling, a dry run that writes nothing, and the progress bar's ETA from the first epoch."""

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bnablate
import bnablate.bench.calibrate as calibrate
from bnablate.cli import app
from bnablate.cli.eta import EtaColumn, RunShares
from bnablate.cli.sweep_cmd import ProgressReporter
from bnablate.config import compose_config
from bnablate.results.records import write_record
from .fixtures import make_record

GRID = ["model=mlp", "train.epochs=1", "variant=no_bn,bn_pre_act", "seed=range(3)", "threads=1"]


def phases(bill):
    return {r["phase"]: r for _, r in bill.phases.iterrows()}


def test_a_grid_bills_its_runs_and_without_calibration_no_time(tmp_path):
    bill = bnablate.bill(GRID, out_dir=tmp_path, calibrate=False)
    assert list(bill.phases["phase"]) == ["the grid"]
    assert bill.runs == 6 and phases(bill)["the grid"]["finished"] == 0
    assert math.isnan(bill.seconds)
    assert set(bill.costs["runs"]) == {3} and bill.costs["source"].str.startswith("not estimated").all()
    assert "the bill (runs to train" in bill.lines()[0] and "unknown" in bill.lines()[-3]


def test_finished_runs_are_not_billed_and_price_their_architecture(tmp_path):
    for seed, wall in ((0, 2.0), (1, 4.0), (2, 9.0)):  # no_bn's grid done at one epoch: median 4 s
        rec = make_record(["model=mlp", "train.epochs=1", "variant=no_bn", f"seed={seed}", "threads=1"],
                          val_accs=(0.5,))
        write_record(tmp_path, {**rec, "wall_time_s": wall})
    bill = bnablate.bill([*GRID[:-2], "variant=no_bn,bn_pre_act", "seed=range(4)", "threads=1"], out_dir=tmp_path,
                         calibrate=False)
    grid = phases(bill)["the grid"]
    assert (grid["planned"], grid["finished"], grid["to_train"]) == (8, 3, 5)
    costs = bill.costs.set_index(bill.costs["architecture"].str.split(",").str[0])
    assert costs.loc["mlp digits no_bn", "seconds_per_run"] == 4.0 and costs.loc["mlp digits no_bn", "runs"] == 1
    assert costs.loc["mlp digits no_bn", "source"] == "the folder: median of 3 finished run(s)"
    assert costs.loc["mlp digits bn_pre_act", "source"].startswith("not estimated")
    # another epoch count is another price: the folder's one-epoch runs do not price two-epoch runs
    two = bnablate.bill(["model=mlp", "train.epochs=2", "variant=no_bn", "seed=range(2)", "threads=1"],
                        out_dir=tmp_path, calibrate=False)
    assert two.costs["source"].str.startswith("not estimated").all()


def test_tuning_is_billed_before_the_grid(tmp_path):
    bill = bnablate.bill(GRID, out_dir=tmp_path, tune=["optim.lr=0.01,0.1"], tune_seeds=2, calibrate=False)
    rows = phases(bill)
    assert rows["tuning"]["to_train"] == 2 * 2 * 2  # variants × candidates × tuning seeds
    assert rows["the grid"]["to_train"] == 6 and math.isnan(rows["the grid"]["finished"])
    assert "finished ones known once tuning selects" in "\n".join(bill.lines())


def test_until_decided_bills_every_seed_up_to_the_budget(tmp_path):
    bill = bnablate.bill(GRID, out_dir=tmp_path, until_decided=True, max_seeds=7, calibrate=False)
    rows = phases(bill)
    assert rows["the grid (first look)"]["to_train"] == 6 and rows["later looks, at most"]["to_train"] == 2 * 4
    assert bill.runs == 14
    # a sequential plan's first look extends the grid's seeds; a fixed design has one look, at the budget
    seq = phases(bnablate.bill(GRID, out_dir=tmp_path, design="sequential", looks=(5, 7), calibrate=False))
    assert seq["the grid (first look)"]["to_train"] == 10 and seq["later looks, at most"]["to_train"] == 4
    fixed = phases(bnablate.bill(GRID, out_dir=tmp_path, design="fixed", max_seeds=6, calibrate=False))
    assert list(fixed) == ["the grid (first look)"] and fixed["the grid (first look)"]["to_train"] == 12


def test_later_looks_skip_finished_seeds_and_pack_as_the_looks_would(tmp_path):
    for seed in (3, 4):  # seeds the looks would add, already trained
        write_record(tmp_path, make_record(["model=mlp", "train.epochs=1", "variant=no_bn", f"seed={seed}",
                                            "threads=1", "pack=true"], val_accs=(0.5,)))
    bill = bnablate.bill([*GRID, "pack=true"], out_dir=tmp_path, until_decided=True, max_seeds=7, calibrate=False)
    later = phases(bill)["later looks, at most"]
    assert (later["planned"], later["finished"], later["to_train"]) == (8, 2, 6)
    # the grid's 3 seeds as one pack each; the looks: 3 → 5 seeds (bn_pre_act's two as a pack, no_bn's finished),
    # then one seed a look, alone
    packs = {(a.split(",")[0], "packs of" in a and a.rsplit(" ", 1)[-1]): n
             for a, n in zip(bill.costs["architecture"], bill.costs["runs"])}
    assert packs == {("mlp digits no_bn", "3"): 3, ("mlp digits bn_pre_act", "3"): 3, ("mlp digits bn_pre_act", "2"): 2,
                     ("mlp digits no_bn", False): 2, ("mlp digits bn_pre_act", False): 2}


def fixed_clock(monkeypatch, step_s=0.01, other_s=0.002):
    """Calibration with a fixed per-step time (and evaluation/setup time): no wall clock in the assertions."""
    monkeypatch.setattr(calibrate, "time_steps", lambda *a, **k: step_s * calibrate.STEPS)
    monkeypatch.setattr(calibrate, "timed", lambda fn, device: (fn(), other_s))


def test_a_calibrated_estimate_is_positive_and_scales_with_epochs(tmp_path, monkeypatch):
    fixed_clock(monkeypatch)
    one = bnablate.bill(["model=mlp", "train.epochs=1", "variant=no_bn", "seed=0", "threads=1"], out_dir=tmp_path)
    two = bnablate.bill(["model=mlp", "train.epochs=2", "variant=no_bn", "seed=0", "threads=1"], out_dir=tmp_path)
    assert one.costs["source"].iloc[0].startswith("calibrated here: 10 ms per step (the mean of 50)")
    assert 0 < one.seconds < two.seconds and math.isfinite(two.seconds)
    assert 1.7 < two.seconds / one.seconds <= 2.0  # the steps and evaluation double, the setup does not


def test_calibration_times_the_trainers_own_steps():
    from bnablate.data import load_data

    cfg = compose_config(["model=mlp", "variant=bn_pre_act", "threads=1"])
    data = load_data(cfg.dataset)
    m = calibrate.measure(cfg, data)
    assert all(math.isfinite(v) and v > 0 for v in (m.step_s, m.eval_image_s, m.setup_s))
    pack = calibrate.measure(cfg, data, pack=2)
    assert pack.pack == 2 and math.isfinite(pack.run_seconds(cfg, data)) and pack.run_seconds(cfg, data) > 0


def snapshot(folder: Path):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_dry_run_prints_the_bill_and_writes_nothing(tmp_path, monkeypatch):
    fixed_clock(monkeypatch)
    write_record(tmp_path, make_record(["model=mlp", "train.epochs=1", "variant=no_bn", "seed=0", "threads=1"],
                                       val_accs=(0.5,)))
    before = snapshot(tmp_path)
    res = CliRunner().invoke(app, ["sweep", *GRID, f"out_dir={tmp_path}", "--until-decided", "--max-seeds", "6",
                                   "--dry-run"], terminal_width=200)
    assert res.exit_code == 0, res.output
    text = res.output
    assert "the bill (runs to train, and their estimated wall time here):" in text
    assert "the grid (first look)" in text and "later looks, at most" in text and "1 of 6 already finished" in text
    assert "median of 1 finished run(s)" in text and "calibrated here" in text
    assert snapshot(tmp_path) == before  # the folder, and the test's working directory around it
    off = CliRunner().invoke(app, ["sweep", *GRID, f"out_dir={tmp_path / 'none'}", "--dry-run", "--no-calibrate"],
                             terminal_width=200)
    assert off.exit_code == 0 and "calibration is off" in off.output and not (tmp_path / "none").exists()


def test_the_eta_comes_from_the_first_epoch_and_skipped_runs_are_not_work():
    now = [0.0]
    shares = RunShares(lambda: now[0])
    shares.ended(trained_here=False)  # a finished run, skipped: instant, not the rate
    assert shares.eta_end(4) is None
    shares.started(pack=1, epochs=4)
    now[0] = 10.0
    shares.epoch()
    assert shares.completed == 1.25 and shares.eta_end(4) == pytest.approx(10 + 40 * 2.75)
    shares.ended(trained_here=True)
    assert shares.completed == 2


def test_the_progress_bar_shows_an_eta_after_the_first_epoch():
    now = [100.0]
    reporter = ProgressReporter(3, clock=lambda: now[0])
    cfg = compose_config(["train.epochs=10"])
    reporter.run_started(cfg, "key")
    task = reporter.progress.tasks[0]
    assert EtaColumn().render(task).plain == "-:--:--"
    now[0] = 105.0
    reporter.epoch_done({"epoch": 1})
    assert EtaColumn().render(reporter.progress.tasks[0]).plain == "0:02:25"  # 50 s a run, 2.9 runs left
