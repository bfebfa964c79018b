"""Concurrency and crash safety: run claims, two sweeps on one folder, kill -9 then resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bnablate.cli import app

from bnablate.results.claims import claim, is_stale, lock_path, release

SWEEP = ["sweep", "model=mlp", "train.epochs=2", "variant=no_bn,bn_pre_act,ln_pre_act", "seed=range(2)",
         "out_dir=runs/shared"]


def test_claim_is_exclusive_and_released(tmp_path):
    first = claim(tmp_path, "abc")
    assert first is not None and claim(tmp_path, "abc") is None
    release(first)
    assert not lock_path(tmp_path, "abc").exists()
    assert claim(tmp_path, "abc") is not None


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
    path = lock_path(tmp_path, "k")
    path.parent.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    import socket
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    assert is_stale(path)
    assert claim(tmp_path, "k") is not None
    other_host = lock_path(tmp_path, "h")
    other_host.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert not is_stale(other_host)  # fresh heartbeat from another host: respected
    os.utime(other_host, (time.time() - 7200, time.time() - 7200))
    assert is_stale(other_host)  # no heartbeat for two hours: its owner is gone


def _bnablate(*args, **kw):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "bnablate", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **kw)


@pytest.mark.slow  # two concurrent sweeps in subprocesses
def test_two_sweeps_into_one_folder_train_each_run_once():
    a, b = _bnablate(*SWEEP), _bnablate(*SWEEP)
    out_a, out_b = a.communicate(timeout=300)[0], b.communicate(timeout=300)[0]
    assert a.returncode == 0 and b.returncode == 0, out_a + out_b
    trained = out_a.count(": ok, test_acc=") + out_b.count(": ok, test_acc=")
    assert trained == 6, out_a + out_b  # every run trained by exactly one of the two processes
    runs = pd.read_csv("runs/shared/runs.csv")
    assert len(runs) == 6 and runs["run_key"].is_unique and (runs["status"] == "ok").all()
    assert not list(Path("runs/shared/records").glob("*.lock"))


@pytest.mark.slow  # end to end in subprocesses; Ctrl-C and disk-full cases stay fast
def test_kill_9_then_rerun_keeps_everything_and_finishes():
    p = _bnablate(*SWEEP, start_new_session=True)
    records = Path("runs/shared/records")
    deadline = time.time() + 240
    while time.time() < deadline and len(list(records.glob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    kept = {f.name for f in records.glob("*.json")}
    assert 2 <= len(kept) < 6
    again = _bnablate(*SWEEP)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert f"{len(kept)} already completed" in out
    assert kept <= {f.name for f in records.glob("*.json")}
    runs = pd.read_csv("runs/shared/runs.csv")
    assert len(runs) == 6 and runs["run_key"].is_unique and (runs["status"] == "ok").all()


@pytest.mark.slow
def test_repeated_random_kill_9_then_rerun_trains_every_run_exactly_once():
    import random

    records = Path("runs/shared/records")
    rng = random.Random(7)  # seeded kill times: start-up, mid-epoch and record writes all get hit across rounds
    for _ in range(4):
        p = _bnablate(*SWEEP, start_new_session=True)
        time.sleep(rng.uniform(2.0, 9.0))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        for f in records.glob("*.json"):  # whatever is there is a whole record, never a half-written one
            assert json.loads(f.read_text())["status"] == "ok"
    final = _bnablate(*SWEEP)
    out = final.communicate(timeout=300)[0]
    assert final.returncode == 0, out
    runs = pd.read_csv("runs/shared/runs.csv")
    assert len(runs) == 6 and runs["run_key"].is_unique and (runs["status"] == "ok").all()
    assert len(list(records.glob("*.json"))) == 6
    assert not list(records.glob("*.lock")) and not list(records.glob(".*.tmp"))  # dead claims taken over, released


def test_ctrl_c_keeps_finished_runs_and_says_how_to_resume():
    p = _bnablate(*SWEEP, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    records = Path("runs/shared/records")
    deadline = time.time() + 240
    while time.time() < deadline and len(list(records.glob("*.json"))) < 1:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=60)[0]
    assert p.returncode == 130, out
    assert "Run the same command again to resume" in out
    assert not list(records.glob("*.lock")) and not list(records.glob(".*.tmp"))
    kept = len(list(records.glob("*.json")))
    assert kept >= 1 and len(pd.read_csv("runs/shared/runs.csv")) == kept


def test_unwritable_output_folder_is_a_usage_error_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # out_dir below a regular file cannot be created, even by root
    for cmd in (["run", "dataset=synthetic", "model=mlp", f"out_dir={blocker}/out"],
                ["sweep", "dataset=synthetic", "model=mlp", "variant=no_bn", "seed=0", f"out_dir={blocker}/out"]):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 2, result.output
        assert f"Cannot write results to {blocker}/out/records" in result.output and "out_dir=PATH" in result.output
        assert "Traceback" not in result.output and "epoch" not in result.output  # nothing trained
    assert blocker.read_text() == "not a folder"


def test_nearly_full_disk_is_refused_before_training(monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    result = CliRunner().invoke(app, ["run", "dataset=synthetic", "model=mlp", "out_dir=runs/full"])
    assert result.exit_code == 2 and "Only 1.0 MB free on the disk of runs/full/records" in result.output
    assert list(Path("runs/full/records").iterdir()) == []  # the probe file is gone


def test_disk_full_at_a_records_write_keeps_every_other_run(monkeypatch):
    import errno

    import bnablate.results.records as records

    real, calls = os.replace, {"n": 0}

    def replace(src, dst):  # the atomic rename of the 2nd record fails as on a full disk
        if str(dst).endswith(".json") and "/records/" in str(dst):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(records.os, "replace", replace)
    cmd = ["sweep", "dataset=synthetic", "model=mlp", "variant=no_bn", "seed=range(3)", "train.epochs=1",
           "out_dir=runs/full"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 1
    assert "1 record(s) could not be written" in result.output and "No space left on device" in result.output
    assert "run the same command again to resume" in result.output and "Traceback" not in result.output
    folder = Path("runs/full/records")
    assert len(list(folder.glob("*.json"))) == 2 and not list(folder.glob("*.tmp")) and not list(folder.glob("*.lock"))
    monkeypatch.setattr(records.os, "replace", real)
    again = CliRunner().invoke(app, cmd)
    assert again.exit_code == 0 and "2 already completed there" in again.output
    assert len(list(folder.glob("*.json"))) == 3


def test_joblib_jobs_share_the_cores_instead_of_oversubscribing():
    from bnablate.sweeps import threads_per_job

    cmd = ["sweep", "dataset=synthetic", "model=mlp", "variant=no_bn,bn_pre_act", "seed=0", "train.epochs=1",
           "out_dir=runs/par", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, result.output
    recs = [json.loads(p.read_text()) for p in Path("runs/par/records").glob("*.json")]
    expected = max(1, (os.cpu_count() or 1) // min(2, os.cpu_count() or 1))
    assert len(recs) == 2 and {r["provenance"]["torch_threads"] for r in recs} == {expected}
    assert threads_per_job(3) == 0  # an explicit threads=N is left to configure_device; outside Hydra: torch's default
    assert threads_per_job(0) == 0
