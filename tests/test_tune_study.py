"""`--tune` with ranges, samplers and pruners (Optuna studies): the grammar and its bad inputs, runs trained side by
side equal to runs trained alone, pruning that stops a hopeless trial early (and a pruned run that counts only for
its pruner's study), equal budgets, validation-only selection, resume after an interrupted trial with the same
selection and nothing trained twice, and the report's protocol note and edge warning."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pandas as pd
import pytest

import bnablate
from bnablate import tune_study, tune_trials
from bnablate.config import compose_config
from bnablate.train import ConfigError
from bnablate.train.runner import run_experiment, train_epochs
from bnablate.tune_space import Range, Space
from bnablate.tuning import parse_tune
from bnablate.tuning_files import CANDIDATES, SELECTION, TUNING_DIR

pytestmark = pytest.mark.xdist_group("tune_study")

TINY = ["model=mlp", "train.epochs=3", "dataset.train_subset=200", "threads=1"]


@pytest.mark.parametrize("item, fix", [
    ("optim.lr=interval(1e-1,1e-4)", "low end must be below"),
    ("optim.lr=tag(log,interval(0,0.1))", "log range must stay above 0"),
    ("optim.lr=tag(cube,interval(1e-4,1e-1))", "unknown tag cube"),
    ("variant.norm=interval(0,1)", "needs a number"),
    ("train.batch_size=interval(16.5,64)", "takes integers"),
])
def test_malformed_ranges_are_refused_naming_the_fix(item, fix):
    with pytest.raises(ConfigError, match=fix):
        parse_tune([item])


def test_budget_sampler_and_pruner_are_checked():
    with pytest.raises(ConfigError, match="at least 1 trial"):
        parse_tune(["optim.lr=interval(1e-4,1e-1)"], trials=0)
    with pytest.raises(ConfigError, match="--tune-sampler grid needs a list"):
        parse_tune(["optim.lr=interval(1e-4,1e-1)"], sampler="grid")
    with pytest.raises(ConfigError, match="choose from none, median, asha"):
        parse_tune(["optim.lr=0.1,0.2"], pruner="hyperband")
    with pytest.raises(ConfigError, match="grid has 2 points"):
        parse_tune(["optim.lr=0.1,0.2"], trials=5)


def test_ranges_parse_as_hydra_optuna_sweeper_reads_them():
    spec = parse_tune(["optim.lr=tag(log,interval(1e-4,1e-1))", "train.batch_size=interval(16,64)"], trials=7)
    assert spec.study and spec.sampler == "tpe" and spec.trials == 7 and spec.budget == 14
    lr, batch = (d for _, d in spec.space.dims)
    assert lr == Range(1e-4, 1e-1, log=True) and batch == Range(16, 64, integer=True)
    dist = spec.space.distributions()
    assert dist["optim.lr"].log and type(dist["train.batch_size"]).__name__ == "IntDistribution"
    grid = parse_tune(["optim.lr=0.1,0.2"])  # a list alone keeps today's grid path
    assert not grid.study and grid.budget == 4 and parse_tune(["optim.lr=0.1,0.2"], sampler="random").study


def test_edge_warnings_for_ranges_and_grids():
    space = Space((("optim.lr", Range(1e-4, 1e-1, log=True)),))
    assert space.edge_notes({"optim.lr": "0.08"}) and not space.edge_notes({"optim.lr": "0.003"})
    assert "high 10%" in space.edge_notes({"optim.lr": "0.08"})[0]
    grid = Space((("optim.lr", ["0.0003", "0.001", "0.003"]),))
    assert "largest value" in grid.edge_notes({"optim.lr": "0.003"})[0] and not grid.edge_notes({"optim.lr": "0.001"})


def _cfg(*extra):
    return compose_config(["model=mlp", "train.epochs=3", "dataset.train_subset=200", "variant=bn_pre_act",
                           "variant.dropout=norm_then_dropout", "variant.dropout_p=0.3", *extra])


def test_runs_trained_side_by_side_equal_runs_trained_alone():
    """Two runs advanced epoch by epoch in turn (each with its own torch global RNG state: dropout draws from it)
    give the very metrics each gives alone."""
    a, b = _cfg("seed=1000"), _cfg("seed=1001")
    alone = [run_experiment(c)["metrics"] for c in (a, b)]
    runs = [tune_trials._Run(c, str(i), live=SimpleNamespace(epoch=lambda row: None)) for i, c in enumerate((a, b))]
    for epoch in range(1, 4):
        for run in runs:
            tune_trials._advance(run, False, None)
    for run in runs:
        tune_trials._advance(run, False, None)
    untimed = lambda rows: [{k: v for k, v in r.items() if k not in ("epoch_time_s", "samples_per_s")}  # noqa: E731
                            for r in rows]
    assert [untimed(r.result[0]["metrics"]) for r in runs] == [untimed(m) for m in alone]


def test_a_stopped_generator_marks_its_runs_pruned_at_that_epoch():
    training = train_epochs([_cfg("seed=1000")])
    next(training)
    with pytest.raises(StopIteration) as done:
        training.send(True)
    result = done.value.value[0]
    assert result["status"] == "pruned" and len(result["metrics"]) == 1


def _sweep(tmp_path, tune, **kw):
    return bnablate.sweep(TINY + ["variant=no_bn,bn_pre_act", "seed=range(2)"], out_dir=tmp_path, tune=tune,
                          tune_seeds=1, **kw)


def _records(folder):
    return {p.name: json.loads(p.read_text()) for p in (folder / TUNING_DIR / "records").glob("*.json")}


def test_study_keeps_its_budget_selects_on_validation_and_resumes(tmp_path):
    _sweep(tmp_path, ["optim.lr=tag(log,interval(1e-3,1))"], tune_sampler="random", tune_trials=3)
    sel = pd.read_csv(tmp_path / TUNING_DIR / SELECTION)
    cands = pd.read_csv(tmp_path / TUNING_DIR / CANDIDATES)
    assert list(sel["trials"]) == [3, 3] and list(sel["sampler"]) == ["random", "random"]
    assert len(cands) == 6 and set(cands["state"]) == {"complete"}
    # the same random values for every variant (seeded by the protocol), as a grid would
    lrs = cands.groupby("label")["optim.lr"].apply(lambda s: sorted(s.astype(float)))
    assert lrs["no_bn"] == lrs["bn_pre_act"]
    for label, g in cands.groupby("label"):  # the best validation score wins, never the test split
        assert sel.set_index("group").loc[label, "selected.optim.lr"] == g.loc[g["score"].idxmax(), "optim.lr"]
    before = _records(tmp_path)
    _sweep(tmp_path, ["optim.lr=tag(log,interval(1e-3,1))"], tune_sampler="random", tune_trials=3)
    assert _records(tmp_path) == before  # nothing trained again
    assert pd.read_csv(tmp_path / TUNING_DIR / SELECTION).equals(sel)


def test_an_interrupted_trial_resumes_to_the_same_selection(tmp_path, monkeypatch):
    """A process killed in its second trial (the trial left running, its lock gone) and a rerun: the rerun fails
    the dead trial, asks the same values again, trains none of the finished runs twice, and selects what an
    uninterrupted study selects."""
    tune = ["optim.lr=tag(log,interval(1e-3,1))"]
    whole = tmp_path / "whole"
    _sweep(whole, tune, tune_sampler="tpe", tune_trials=3)
    calls = {"n": 0}
    real = tune_study.run_trial

    def dies_in_trial_2(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)
    monkeypatch.setattr(tune_study, "run_trial", dies_in_trial_2)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        _sweep(cut, tune, tune_sampler="tpe", tune_trials=3)
    first = _records(cut)
    monkeypatch.setattr(tune_study, "run_trial", real)
    _sweep(cut, tune, tune_sampler="tpe", tune_trials=3)
    after = _records(cut)
    assert all(after[name] == rec for name, rec in first.items())  # finished runs kept as they were
    strip = lambda f: pd.read_csv(f / TUNING_DIR / SELECTION).drop(columns=["cell", "context"])  # noqa: E731
    assert strip(cut).equals(strip(whole))


def test_the_median_pruner_stops_a_hopeless_trial_early(tmp_path, monkeypatch):
    """lr 1e-9 learns nothing: once a trial has finished it is pruned after its first epoch, and its record says
    so; a study without that pruner trains the same run to its last epoch."""
    monkeypatch.setattr(tune_study, "MEDIAN_STARTUP", 1)
    bnablate.sweep(TINY + ["variant=bn_pre_act,no_bn", "seed=range(2)"], out_dir=tmp_path,
                   tune=["optim.lr=0.05,1e-9"], tune_seeds=2, tune_pruner="median")
    cands = pd.read_csv(tmp_path / TUNING_DIR / CANDIDATES)
    hopeless = cands[cands["optim.lr"].astype(float) == 1e-9]
    good = cands[cands["optim.lr"].astype(float) == 0.05]
    pruned = hopeless[hopeless["state"] == "pruned"]
    assert len(pruned) >= 1, cands  # a variant whose grid drew 1e-9 second
    assert (pruned["epochs"] < good.set_index("label").loc[pruned["label"], "epochs"].values).all()
    recs = [r for r in _records(tmp_path).values() if r["status"] == "pruned"]
    assert recs and all(r["pruned"]["pruner"] == "median" and len(r["metrics"]) == r["pruned"]["epoch"] < 3
                        for r in recs)
    assert tune_trials.done_record(tmp_path / TUNING_DIR, recs[0]["run_key"], "median") is not None
    assert tune_trials.done_record(tmp_path / TUNING_DIR, recs[0]["run_key"], "none") is None  # trains again there
    assert all(math.isnan(s) for s in pruned["score"])  # never selected
    from bnablate.verify import verify_record

    assert verify_record(recs[0], tmp_path / "scratch") == []  # re-run to its pruned epoch, it stops the same
    rep = bnablate.report(tmp_path / TUNING_DIR, formats=())  # the tuning runs' own report says what it left out
    assert any("pruned run(s)" in n and "left out" in n for n in rep.notes), rep.notes


def _cli(out, *extra):
    return [sys.executable, "-m", "bnablate", "sweep", *TINY, "variant=bn_pre_act", "seed=range(2)", f"out_dir={out}",
            "--tune", "optim.lr=tag(log,interval(1e-3,1))", "--tune-sampler", "random", "--tune-seeds", "1",
            "--tune-pruner", "median", *extra]


def _trials(out):
    return pd.read_csv(out / TUNING_DIR / CANDIDATES)


@pytest.mark.slow
def test_kill_9_mid_tuning_then_rerun_selects_the_same_training_each_finished_run_once(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert subprocess.run(_cli(whole, "--tune-trials", "6"), capture_output=True, env=env, timeout=900).returncode == 0
    p = subprocess.Popen(_cli(cut, "--tune-trials", "6"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    records = cut / TUNING_DIR / "records"
    deadline = time.time() + 600
    while time.time() < deadline and len(list(records.glob("*.json"))) < 3:  # inside the fourth trial
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate()
    kept = {f.name: f.read_bytes() for f in records.glob("*.json")}
    again = subprocess.run(_cli(cut, "--tune-trials", "6"), capture_output=True, text=True, env=env, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    final = {f.name: f.read_bytes() for f in records.glob("*.json")}
    assert all(final[name] == data for name, data in kept.items())  # none retrained
    keep = ["optim.lr", "state", "score", "epochs"]
    assert _trials(cut)[keep].equals(_trials(whole)[keep])
    strip = lambda f: pd.read_csv(f / TUNING_DIR / SELECTION).drop(columns=["cell", "context"])  # noqa: E731
    assert strip(cut).equals(strip(whole))


@pytest.mark.slow
def test_two_processes_share_one_budget_and_run_no_trial_twice(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    procs = [subprocess.Popen(_cli(tmp_path, "--tune-trials", "6"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    trials = _trials(tmp_path)
    assert len(trials) == 6 and trials["trial"].is_unique  # one budget of 6, shared
    recs = list((tmp_path / TUNING_DIR / "records").glob("*.json"))
    assert len(recs) == 6  # one run per trial (1 seed), none trained twice


def test_a_run_another_trial_is_training_is_waited_for_then_replayed_or_given_up(tmp_path):
    """Two processes' trials drew one value: the second waits (the sweep's --wait-timeout) for the first's run and
    replays its record; with no time to wait it stops with the usual pending-runs error instead of waiting forever."""
    from bnablate.errors import RunsPending
    from bnablate.reporter import Reporter
    from bnablate.results import run_key
    from bnablate.results.claims import claim
    from bnablate.results.records import record_path
    from bnablate.config import to_plain
    from bnablate.waiting import Wait

    from .fixtures import OtherProcess

    overrides = ["model=mlp", "train.epochs=1", "dataset.train_subset=200", "variant=no_bn", "seed=1000"]
    key = bnablate.run(overrides, out_dir=tmp_path / "other")["run_key"]
    done = record_path(tmp_path / "other", key).read_bytes()
    for name, wait in (("waits", Wait(timeout=60, poll=0.01)), ("gives-up", Wait(timeout=0))):
        folder = tmp_path / name
        cfg = compose_config([*overrides, f"out_dir={folder}"])
        assert run_key(to_plain(cfg)) == key and claim(folder, key) is not None  # a live claim: "another" trial's
        run = tune_trials._Run(cfg, key)
        if name == "gives-up":
            with pytest.raises(RunsPending, match="have no record yet"):
                tune_trials._claim(run, "none", Reporter(), wait)
            continue
        other = OtherProcess(folder, key, record=done)  # finishes its run once this one starts waiting
        tune_trials._claim(run, "none", other, wait)
        assert len(other.lines) == 1 and "another process's trial is training it" in other.lines[0]
        assert run.record["skipped"] and run.lock is None and not other.trained  # replayed, not trained
