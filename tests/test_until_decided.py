"""`sweep --until-decided`: seeds added only where a comparison is undecided, every look logged, deterministic on
rerun and after an interruption, earlier runs reused, and the report's verdicts at the end."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

import bnablate
from bnablate.cli import app
from bnablate.sequential import DECISIONS, next_seeds
from .fixtures import Counting, OtherProcess

# one worker for the module: its module fixture (a trained sweep) is then built once under pytest-xdist
pytestmark = pytest.mark.xdist_group("until-decided")

# MLP on the embedded digits, 2 epochs: BN vs no BN is decided in a few looks, in seconds per run
GRID = ["model=mlp", "train.epochs=2", "variant=no_bn,bn_pre_act", "seed=range(3)"]


def test_next_seeds_are_deterministic_and_capped():
    assert next_seeds([0, 1, 2], 2, 12) == [3, 4]
    assert next_seeds([5, 9, 11], 3, 12) == [12, 13, 14]
    assert next_seeds(list(range(11)), 2, 12) == [11] and next_seeds(list(range(12)), 2, 12) == []


@pytest.fixture(scope="module")
def decided(tmp_path_factory):
    out = tmp_path_factory.mktemp("ud") / "runs"
    counting = Counting()
    runs = bnablate.sweep(GRID, out_dir=out, reporter=counting, until_decided=True, max_seeds=9, seed_step=2)
    return out, runs, counting


def test_adds_seeds_until_bn_vs_no_bn_is_decided_and_logs_every_look(decided):
    out, runs, counting = decided
    log = pd.read_csv(out / DECISIONS)
    assert list(log["look"]) == list(range(len(log))) and len(log) >= 2  # one comparison, one row per look
    assert (log["verdict"].iloc[:-1] == "undecided").all() and log["verdict"].iloc[-1] == "better"
    assert log["action"].iloc[-1] == "decided" and log["action"].iloc[0] == "add seeds 3,4"
    assert (log["boundary"] == 1 / 0.05).all()  # one comparison: E_n must reach 1/α
    n = int(log["n_seeds"].iloc[-1])
    assert len(runs) == len(counting.trained) == 2 * n and sorted(runs["seed"].unique()) == list(range(n))
    report = bnablate.report(out, formats=["csv"])  # the CLI writes it at the end of the sweep; the API on request
    summary = pd.read_csv(out / "report" / "summary.csv")
    assert set(summary["verdict"].dropna()) <= {"better", "worse", "equivalent", "undecided"}
    assert summary.set_index("variant").at["bn_pre_act", "verdict"] == "better"
    assert report.comparisons["n_pairs"].iloc[0] == n


def test_rerunning_trains_nothing_and_reaches_the_same_decisions(decided):
    out, runs, _ = decided
    before = (out / DECISIONS).read_bytes()
    counting = Counting()
    again = bnablate.sweep(GRID, out_dir=out, reporter=counting, until_decided=True, max_seeds=9, seed_step=2)
    assert counting.trained == [] and sorted(again["run_key"]) == sorted(runs["run_key"])
    assert (out / DECISIONS).read_bytes() == before


def test_an_interrupted_sweep_resumes_to_the_same_decisions_training_each_run_once(decided, tmp_path):
    out, runs, _ = decided
    first = Counting(stop_after=len(runs) - 1)  # interrupted inside the last look's runs
    with pytest.raises(KeyboardInterrupt):
        bnablate.sweep(GRID, out_dir=tmp_path, reporter=first, until_decided=True, max_seeds=9, seed_step=2)
    second = Counting()
    bnablate.sweep(GRID, out_dir=tmp_path, reporter=second, until_decided=True, max_seeds=9, seed_step=2)
    assert not set(first.trained) & set(second.trained)  # no run trained twice
    assert sorted(first.trained + second.trained) == sorted(runs["run_key"])
    assert (tmp_path / DECISIONS).read_bytes() == (out / DECISIONS).read_bytes()


def test_finished_runs_of_an_earlier_plain_sweep_count(decided, tmp_path):
    out, runs, _ = decided
    plain = Counting()
    bnablate.sweep([*GRID[:-1], "seed=range(5)"], out_dir=tmp_path, reporter=plain)
    later = Counting()
    bnablate.sweep(GRID, out_dir=tmp_path, reporter=later, until_decided=True, max_seeds=9, seed_step=2)
    assert len(plain.trained) == 10 and len(later.trained) == len(runs) - 10  # seeds 3, 4 were already there
    assert (tmp_path / DECISIONS).read_bytes() == (out / DECISIONS).read_bytes()


def test_undecided_at_the_cap_is_an_answer_with_the_seeds_it_would_take(tmp_path):
    """bn_pre_act vs bn_pre_act_bias differ by a bias BN cancels: equivalence within 0.01 points is out of reach of
    6 seeds, so the cap stops the sweep and says how many seeds deciding would take. The look after the grid's 2
    seeds jumps to 5, the fewest at which one comparison can be decided (no look is wasted below it)."""
    res = CliRunner().invoke(app, ["sweep", "model=mlp", "train.epochs=1", "variant=bn_pre_act,bn_pre_act_bias",
                                   "sweep.baseline=bn_pre_act", "report.margin=0.01", "seed=range(2)",
                                   "--until-decided", "--max-seeds", "6", f"out_dir={tmp_path}"],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "stop: --max-seeds 6 reached; undecided at the cap: bn_pre_act_bias vs bn_pre_act (~" in res.output
    log = pd.read_csv(tmp_path / DECISIONS)
    assert list(log["n_seeds"]) == [2, 5, 6] and log["action"].iloc[-1] == "stop: --max-seeds 6 reached"
    assert log["seeds_needed"].iloc[-1] > 6


def test_a_budget_below_the_fewest_seeds_that_can_decide_is_refused(tmp_path):
    res = CliRunner().invoke(app, ["sweep", *GRID, "--until-decided", "--max-seeds", "4", f"out_dir={tmp_path}"],
                             terminal_width=200)
    assert res.exit_code == 2
    assert "the 5 seeds at which a family of 1 comparisons can reach any verdict" in " ".join(res.output.split())
    assert not (tmp_path / "records").exists()


def test_dry_run_names_the_rule_and_trains_nothing(tmp_path):
    res = CliRunner().invoke(app, ["sweep", *GRID, "--until-decided", "--dry-run", f"out_dir={tmp_path}"],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert ("1 more seed(s) per look for its groups only (straight to the fewest seeds that can decide), up to 12 "
            "seeds") in " ".join(res.output.split())
    # one comparison (bn_pre_act vs no_bn): the anytime-valid interval at α = 0.05 is finite from 5 seeds on
    assert "1 comparison(s) at α=0.05: no verdict is possible before 5 seeds per group (budget 12)" in \
        " ".join(res.output.split())
    assert not (tmp_path / "records").exists()


def test_dry_run_and_bill_forecast_the_seeds_each_comparison_needs_from_the_folder(decided, tmp_path):
    """A plain --until-decided (no plan): the folder's finished runs of the grid's cells — its own seeds included,
    which anytime-valid intervals allow — are the pilot of a forecast, in the dry run and in bnablate.bill."""
    out, runs, _ = decided
    shutil.copytree(out / "records", tmp_path / "records")
    empty = bnablate.bill(GRID, out_dir=tmp_path / "empty", until_decided=True, calibrate=False)
    assert list(empty.decidable["fewest_seeds"]) == [5] and empty.forecast.empty
    code = CliRunner().invoke(app, ["sweep", *GRID, "--until-decided", "--dry-run", f"out_dir={tmp_path / 'empty'}"],
                              terminal_width=200)
    assert "no finished runs of these cells in the folder yet" in " ".join(code.output.split())

    the_bill = bnablate.bill(GRID, out_dir=tmp_path, until_decided=True, max_seeds=9, calibrate=False)
    row = the_bill.forecast.iloc[0]
    n = runs["seed"].nunique()
    assert (row["a"], row["b"], row["pilot_seeds"]) == ("bn_pre_act", "no_bn", n) and row["sd_diff"] > 0
    assert 0 <= row["power"] <= 1 and row["effect"] == 0.01  # the default margin of an accuracy: 1 point (0.01)
    assert the_bill.decidable.to_dict("records") == [{"family": the_bill.decidable["family"].iloc[0],
                                                      "comparisons": 1, "fewest_seeds": 5, "budget": 9}]
    res = CliRunner().invoke(app, ["sweep", *GRID, "--until-decided", "--max-seeds", "9", "--dry-run",
                                   f"out_dir={tmp_path}"], terminal_width=200)
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "forecast from the pilot" in text and f"over {n} pilot seeds" in text
    assert not (tmp_path / "report").exists()  # a dry run writes nothing
    nomargin = CliRunner().invoke(app, ["sweep", *GRID, "report.metric=final_test_loss", "--until-decided",
                                        "--dry-run", f"out_dir={tmp_path}"], terminal_width=200)
    assert "no margin for final_test_loss" in " ".join(nomargin.output.split())


@pytest.mark.slow
def test_kill_9_mid_look_then_rerun_reaches_the_same_decisions_training_each_run_once(decided, tmp_path):
    out, runs, _ = decided
    cmd = [sys.executable, "-m", "bnablate", "sweep", *GRID, "--until-decided", "--max-seeds", "9", "--seed-step", "2",
           f"out_dir={tmp_path}"]
    env = {**os.environ, "COLUMNS": "200"}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         start_new_session=True)
    records = tmp_path / "records"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(records.glob("*.json"))) < 7:  # inside the second look's runs
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate()
    kept = {f.name: f.read_bytes() for f in records.glob("*.json")}
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    final = {f.name: f.read_bytes() for f in records.glob("*.json")}
    assert len(final) == len(runs) and all(final[name] == data for name, data in kept.items())  # none retrained
    assert (tmp_path / DECISIONS).read_bytes() == (out / DECISIONS).read_bytes()


@pytest.mark.slow
def test_the_issues_done_when_command(tmp_path):
    """bnablate sweep variant=no_bn,bn_pre_act,bn_post_act --until-decided --max-seeds 12 train.epochs=2 out_dir=D"""
    args = ["sweep", "variant=no_bn,bn_pre_act,bn_post_act", "--until-decided", "--max-seeds", "12",
            "train.epochs=2", f"out_dir={tmp_path / 'D'}"]
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(tmp_path / "D" / "report" / "summary.csv").set_index("variant")
    assert set(summary["verdict"].dropna()) <= {"better", "worse", "equivalent", "undecided"}
    assert summary.at["bn_pre_act", "verdict"] == "better" and (tmp_path / "D" / DECISIONS).exists()
    again = CliRunner().invoke(app, args, terminal_width=200)
    assert again.exit_code == 0 and "ok, test_acc" not in again.output  # nothing trained
    shutil.rmtree(tmp_path / "D")


def test_a_look_waits_for_runs_another_process_is_training(decided, tmp_path):
    """A run of look 0 held by a live claim elsewhere (no record yet): the look waits for it and, once the other
    process's record appears, replays the same looks training nothing; with --wait-timeout 0 (or past it: exit status
    2) no look is taken or logged from the other runs alone; a claim whose owner dies during the wait is trained
    here."""
    from bnablate.errors import RunsPending
    from bnablate.results.claims import claim

    out = tmp_path / "runs"
    shutil.copytree(decided[0], out)
    key = decided[1].loc[decided[1]["seed"] == 0, "run_key"].iloc[0]
    record = out / "records" / f"{key}.json"
    data = record.read_bytes()
    record.unlink()
    claim(out, key)  # held by this test's process: a live owner on this host
    before = (out / DECISIONS).read_bytes()
    first = Counting()
    with pytest.raises(RunsPending, match="1 of 6 runs of look 0 have no record yet.*--wait-timeout 0 does not wait"):
        bnablate.sweep(GRID, out_dir=out, reporter=first, until_decided=True, max_seeds=9, seed_step=2, wait_timeout=0)
    assert first.trained == [] and (out / DECISIONS).read_bytes() == before
    args = ["sweep", *GRID, f"out_dir={out}", "--until-decided", "--max-seeds", "9", "--seed-step", "2",
            "--wait-timeout", "0.01"]
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 2 and "within --wait-timeout 0.01 s" in res.output and "longer --wait-timeout" in res.output
    assert "waiting for 1 of 6 runs of look 0" in res.output and (out / DECISIONS).read_bytes() == before
    finishing = OtherProcess(out, key, data)
    bnablate.sweep(GRID, out_dir=out, reporter=finishing, until_decided=True, max_seeds=9, seed_step=2, wait_poll=0)
    assert len(finishing.lines) == 1 and "1 of 6 runs of look 0" in finishing.lines[0]
    assert finishing.trained == [] and (out / DECISIONS).read_bytes() == before
    record.unlink()
    claim(out, key)
    dying = OtherProcess(out, key)  # the other process is killed while this one waits: its run is trained here
    bnablate.sweep(GRID, out_dir=out, reporter=dying, until_decided=True, max_seeds=9, seed_step=2, wait_poll=0)
    assert len(dying.lines) == 1 and dying.trained == [key] and (out / DECISIONS).read_bytes() == before


def test_sweeps_sharing_a_folder_each_keep_their_looks(decided, tmp_path):
    """Several until-decided sweeps into one folder (the reproductions' presets) each keep their block of
    decisions.csv, named by the grid's planned run keys; rerunning one (with an execution option: same keys)
    replaces its own block in place and trains nothing."""
    out = tmp_path / "runs"
    shutil.copytree(decided[0], out)
    first = pd.read_csv(out / DECISIONS, dtype={"grid": str})
    other = ["model=mlp", "train.epochs=1", "variant=bn_pre_act,bn_pre_act_bias", "sweep.baseline=bn_pre_act",
             "report.margin=0.01", "seed=range(2)"]
    bnablate.sweep(other, out_dir=out, reporter=Counting(), until_decided=True, max_seeds=5, seed_step=1)
    both = pd.read_csv(out / DECISIONS, dtype={"grid": str})
    assert list(dict.fromkeys(both["grid"])) == [first["grid"].iloc[0], both["grid"].iloc[-1]]
    assert first["grid"].nunique() == 1 and both["grid"].nunique() == 2
    pd.testing.assert_frame_equal(both.iloc[:len(first)], first)  # the first sweep's looks, unchanged
    assert list(both["n_seeds"].iloc[len(first):]) == [2, 5]
    before = (out / DECISIONS).read_bytes()
    again = Counting()
    bnablate.sweep([*GRID, "threads=1"], out_dir=out, reporter=again, until_decided=True, max_seeds=9, seed_step=2)
    assert again.trained == [] and (out / DECISIONS).read_bytes() == before


def test_a_log_from_before_the_grid_column_is_replaced(tmp_path):
    from bnablate.sequential import LOG_COLUMNS, write_log

    legacy = pd.DataFrame([{c: 1 for c in LOG_COLUMNS if c != "grid"}])
    legacy.to_csv(tmp_path / DECISIONS, index=False)
    write_log(tmp_path, "0123456789", [{**{c: 2 for c in LOG_COLUMNS}, "grid": "0123456789"}])
    log = pd.read_csv(tmp_path / DECISIONS, dtype={"grid": str})
    assert list(log.columns) == LOG_COLUMNS and len(log) == 1 and log.at[0, "grid"] == "0123456789"
