"""Concurrency and crash safety: run claims, two sweeps on one folder, kill -9 then resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

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


def test_two_sweeps_into_one_folder_train_each_run_once():
    a, b = _bnablate(*SWEEP), _bnablate(*SWEEP)
    out_a, out_b = a.communicate(timeout=300)[0], b.communicate(timeout=300)[0]
    assert a.returncode == 0 and b.returncode == 0, out_a + out_b
    trained = out_a.count(": ok, test_acc=") + out_b.count(": ok, test_acc=")
    assert trained == 6, out_a + out_b  # every run trained by exactly one of the two processes
    runs = pd.read_csv("runs/shared/runs.csv")
    assert len(runs) == 6 and runs["run_key"].is_unique and (runs["status"] == "ok").all()
    assert not list(Path("runs/shared/records").glob("*.lock"))


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
