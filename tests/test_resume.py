"""train.checkpoint: a run stopped after any epoch — its generator dropped, or its process killed with kill -9 —
resumes at its next epoch and ends with the metrics and test predictions of the uninterrupted run, bit for bit; the
checkpoint goes once the record is written; a broken checkpoint is set aside and the run starts over."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import bnablate
from bnablate.config import compose_config, to_plain
from bnablate.pack.rules import packable
from bnablate.results import run_key
from bnablate.train.resume import RESUME_DIR, resume_path
from bnablate.train.runner import run_experiment, train_epochs

# every piece of state an epoch hands the next: dropout (torch's global stream), a cosine schedule under a warm-up,
# BN's running statistics, momentum SGD, PreciseBN's batches
RUN = ["model=mlp", "train.epochs=4", "dataset.train_subset=300", "variant=bn_pre_act",
       "variant.dropout=norm_then_dropout", "variant.dropout_p=0.3", "optim.schedule=cosine", "optim.warmup_steps=5",
       "optim.name=sgd", "optim.lr=0.05", "bn.eval_stats=precise", "seed=3"]
TIMINGS = ("epoch_time_s", "samples_per_s")


def _untimed(rows):
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]


@pytest.mark.parametrize("stop_after", [1, 3])
def test_a_run_stopped_after_an_epoch_resumes_to_the_uninterrupted_result(tmp_path, stop_after):
    whole = run_experiment(compose_config([*RUN, f"out_dir={tmp_path / 'whole'}"]))  # no checkpoint at all
    cfg = compose_config([*RUN, "train.checkpoint=true", f"out_dir={tmp_path / 'stopped'}"])
    training = train_epochs([cfg])
    next(training)
    for _ in range(stop_after - 1):
        training.send(False)
    training.close()  # the process ends here, as if killed after that epoch's checkpoint
    path = resume_path(cfg.out_dir, run_key(to_plain(cfg)))
    assert path.exists()
    resumed = run_experiment(cfg)
    assert resumed["execution"]["resumed_after_epoch"] == stop_after
    assert _untimed(resumed["metrics"]) == _untimed(whole["metrics"])
    assert resumed["test_correct"] == whole["test_correct"] and resumed["status"] == whole["status"] == "ok"


def test_the_checkpoint_goes_with_the_record_and_a_broken_one_starts_over(tmp_path):
    rec = bnablate.run([*RUN, "train.epochs=2", "train.checkpoint=true"], out_dir=tmp_path)
    assert rec["status"] == "ok" and not list((tmp_path / RESUME_DIR).glob("*.pt"))  # done with: deleted
    cfg = compose_config([*RUN, "train.epochs=2", "train.checkpoint=true", f"out_dir={tmp_path / 'broken'}"])
    path = resume_path(cfg.out_dir, run_key(to_plain(cfg)))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="could not be resumed"):
        again = run_experiment(cfg)
    assert _untimed(again["metrics"]) == _untimed(rec["metrics"]) and "resumed_after_epoch" not in again["execution"]
    assert path.with_name(path.name + ".bad").exists()


def test_checkpointed_runs_train_alone():
    cfgs = [compose_config(["model=mlp", "train.checkpoint=true", f"seed={s}"]) for s in (0, 1)]
    assert "train.checkpoint" in packable(cfgs)


def test_kill_9_mid_run_then_rerun_writes_the_uninterrupted_record(tmp_path):
    """The done-when of issue 48: a checkpointed run killed with SIGKILL after an epoch, then the same command again,
    equals the run trained without a stop."""
    overrides = [*RUN, "train.epochs=6", "dataset.train_subset=1000"]
    whole = bnablate.run(overrides, out_dir=tmp_path / "whole")
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "bnablate", "run", *overrides, "train.checkpoint=true", f"out_dir={out}"]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((out / RESUME_DIR).glob("*.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run ended before its first checkpoint could be seen; give it more epochs"
    assert not list((out / "records").glob("*.json"))  # killed before its record
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    rec = json.loads(next((out / "records").glob("*.json")).read_text())
    assert rec["provenance"]["resumed_after_epoch"] >= 1
    assert _untimed(rec["metrics"]) == _untimed(whole["metrics"]) and rec["test_correct"] == whole["test_correct"]
    assert not list((out / RESUME_DIR).glob("*.pt"))
