"""Pre-registered plans (`sweep --design`), the race to the best (`--goal best`) and their bad inputs, end to end
on the MLP and the embedded digits (a run takes about a second)."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import bnablate
from bnablate.cli import app
from bnablate.plans import load_plans
from bnablate.results.schema import scan_records
from bnablate.sequential import DECISIONS
from .fixtures import Counting

pytestmark = pytest.mark.xdist_group("plans")  # the module fixtures' sweeps are built once, on one worker

GRID = ["model=mlp", "train.epochs=1", "variant=no_bn,bn_pre_act"]


def cli(*args):
    res = CliRunner().invoke(app, list(args), terminal_width=200)
    return res.exit_code, " ".join(res.output.split())


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "fixed"
    counting = Counting()
    runs = bnablate.sweep([*GRID, "seed=range(2)"], out_dir=out, reporter=counting, design="fixed", max_seeds=5)
    return out, runs, counting


def test_a_fixed_plan_is_declared_then_judges_its_runs(fixed):
    out, runs, counting = fixed
    (plan,) = load_plans([out])
    assert plan.kind == "fixed" and plan.looks == [5] and plan.seeds == [0, 1, 2, 3, 4] and len(plan.keys) == 10
    body = json.loads((out / "plans" / f"{plan.grid}.json").read_text())
    assert body["hash"] == plan.hash and body["goal"] == "baseline"
    assert len(counting.trained) == 10 and sorted(runs["seed"].unique()) == list(range(5))  # straight to its look
    assert {r["config"]["sweep"]["plan"] for r in scan_records(out).records} == {plan.hash}  # every record says so
    log = pd.read_csv(out / DECISIONS)
    assert list(log["look"]) == [0] and log["action"].iloc[0] in ("decided", "stop: the plan's last look (5 seeds) "
                                                                               "reached")
    rep = bnablate.report(out, formats=())
    c = rep.comparisons.iloc[0]
    assert c["method"].startswith("fixed design, paired t at 5 seeds") and c["n_pairs"] == 5
    assert {"ci_low_anytime", "ci_high_anytime", "verdict_anytime", "planned_power"} <= set(rep.comparisons)
    assert c["ci_high"] - c["ci_low"] < c["ci_high_anytime"] - c["ci_low_anytime"]  # what the plan buys
    assert c["planned_power_from"] == "observed spread" and any(n.startswith("Plan: ") for n in rep.notes)


def test_rerunning_a_plan_trains_nothing_and_a_changed_plan_is_refused(fixed):
    out, runs, _ = fixed
    counting = Counting()
    bnablate.sweep([*GRID, "seed=range(2)"], out_dir=out, reporter=counting, design="fixed", max_seeds=5)
    assert counting.trained == []
    code, text = cli("sweep", *GRID, "seed=range(2)", "--design", "fixed", "--max-seeds", "5", "report.margin=2",
                     f"out_dir={out}")
    assert code == 2 and "already declares another plan for this sweep (it differs in margin)" in text
    code, text = cli("sweep", *GRID, "seed=range(2)", "--design", "fixed", "--max-seeds", "6", f"out_dir={out}")
    assert code == 2 and "Seeds 0, 1, 2, 3, 4 of this fixed design already have finished runs" in text


def test_runs_outside_the_plan_fall_back_to_anytime_and_report_plan_judges_its_own(fixed, tmp_path):
    out, runs, _ = fixed
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    bnablate.sweep([*GRID, "seed=7"], out_dir=copy)  # a seed the plan never declared
    rep = bnablate.report(copy, formats=())
    assert rep.comparisons["method"].iloc[0].startswith("anytime-valid")
    assert any("were not used: this report holds runs outside" in n for n in rep.notes)
    grid = load_plans([copy])[0].grid
    planned = bnablate.report(copy, formats=(), plan=grid)
    assert planned.comparisons["method"].iloc[0].startswith("fixed design") and planned.comparisons["n_pairs"][0] == 5


def test_a_pilot_sizes_the_plan_and_its_seeds_must_lie_outside_it(fixed, tmp_path):
    out, runs, _ = fixed
    import shutil

    shutil.copytree(out / "records", tmp_path / "records")  # seeds 0–4 as a pilot (the plan file left behind)
    code, text = cli("sweep", *GRID, "seed=range(2)", "--design", "fixed", "--max-seeds", "5", f"out_dir={tmp_path}")
    assert code == 2 and "already have finished runs" in text and "seed=range(5,10)" in text
    code, text = cli("sweep", *GRID, "seed=range(5,7)", "--design", "fixed", "--max-seeds", "6", "--dry-run",
                     f"out_dir={tmp_path}")
    assert code == 0, text
    assert "would declare plan" in text and "forecast from the pilot" in text and "over 5 pilot seeds" in text
    assert not (tmp_path / "plans").exists()  # a dry run writes nothing


def test_a_sequential_plan_looks_at_its_looks_only(tmp_path):
    counting = Counting()
    bnablate.sweep([*GRID, "seed=range(3)"], out_dir=tmp_path, reporter=counting, design="sequential",
                   looks=(3, 5))
    log = pd.read_csv(tmp_path / DECISIONS)
    assert set(log["n_seeds"]) <= {3, 5}
    rep = bnablate.report(tmp_path, formats=())
    assert rep.comparisons["method"].iloc[0].startswith("group-sequential design, looks at 3,5 seeds")


def test_the_race_stops_training_the_eliminated(tmp_path):
    """no_bn is decided worse than BN within a few looks and gets no more seeds; the other two race on."""
    counting = Counting()
    bnablate.sweep(["model=mlp", "train.epochs=1", "variant=no_bn,bn_pre_act,ln_pre_act", "seed=range(2)"],
                   out_dir=tmp_path, reporter=counting, until_decided=True, max_seeds=9, goal="best")
    log = pd.read_csv(tmp_path / DECISIONS)
    out = log[log["verdict"] == "eliminated"]
    assert list(out["a"]) == ["no_bn"] and out["action"].iloc[0].startswith("no more seeds for no_bn")
    runs = bnablate.load_results(tmp_path).groupby("variant")["seed"].max()
    assert runs["no_bn"] < runs["bn_pre_act"] == runs["ln_pre_act"]
    rep = bnablate.report(tmp_path, formats=())
    assert rep.summary.set_index("variant").at["no_bn", "race"].startswith("eliminated by")
    assert any("digits · mlp: " in n and ("best" in n or "remain in the race" in n or "tied" in n)
               for n in rep.notes)


@pytest.mark.parametrize("args, msg", [
    (["--design", "fixd"], "--design 'fixd' is not a design"),
    (["--design", "sequential", "--looks", "5,3"], "the looks must be increasing seed counts"),
    (["--design", "sequential"], "needs --looks with two or more seed counts"),
    (["--design", "fixed", "--looks", "5,7"], "--looks is for --design sequential"),
    (["--design", "sequential", "--looks", "5,7", "--max-seeds", "9"], "disagrees with the last look"),
    (["--design", "sequential", "--looks", "2,4"], "the plan's first look is at 2"),
    (["--design", "sequential", "--looks", "5,x"], "give seed counts separated by commas"),
    (["--goal", "winner", "--until-decided"], "--goal 'winner': choose baseline"),
    (["--goal", "best", "--until-decided", "variant=no_bn"], "--goal best needs at least two variants"),
    (["--goal", "best", "--until-decided", "report.metric=final_train_loss"], "--goal best needs an equivalence margin"),
    (["--goal", "pairs", "report.compare=best"], "--goal pairs and report.compare=best disagree"),
])
def test_bad_plan_options_are_refused_before_training(tmp_path, args, msg):
    code, text = cli("sweep", *GRID, "seed=range(3)", *args, f"out_dir={tmp_path}")
    assert code == 2 and msg in text, text
    assert not (tmp_path / "records").exists() and not (tmp_path / "plans").exists()


def test_with_tune_the_plan_is_declared_for_the_tuned_runs(tmp_path):
    """--tune then --design: the plan is written after each variant's lr is chosen, before its evaluation runs, and
    its keys are theirs, so the report judges them with its design."""
    runs = bnablate.sweep([*GRID, "seed=range(2)"], out_dir=tmp_path, design="fixed", max_seeds=5,
                          tune=["optim.lr=0.001,0.01"], tune_seeds=1)
    (plan,) = load_plans([tmp_path])
    assert set(runs["run_key"]) <= set(plan.keys) and len(runs) == 10
    assert {r["config"]["sweep"]["plan"] for r in scan_records(tmp_path).records} == {plan.hash}
    rep = bnablate.report(tmp_path, formats=())
    assert rep.comparisons["method"].iloc[0].startswith("fixed design, paired t at 5 seeds")


def test_a_tuned_race_is_checked_on_the_grid_before_tuning(tmp_path):
    """After tuning, each variant's cell carries its own lr: the race's families (and `--goal best`'s check of two
    variants per family) are read off the sweep's grid, not off those cells."""
    bnablate.sweep(["model=mlp", "train.epochs=1", "variant=no_bn,bn_pre_act,ln_pre_act", "seed=range(2)"],
                   out_dir=tmp_path, tune=["optim.lr=0.001,0.01"], tune_seeds=1, goal="best", design="fixed",
                   max_seeds=5)
    rep = bnablate.report(tmp_path, formats=())
    assert "race" in rep.summary and len(rep.comparisons) == 3
    assert rep.comparisons["method"].iloc[0].startswith("fixed design")
