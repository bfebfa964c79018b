"""threads=0 (auto): a CPU run takes the cores other processes leave free (at most torch's own count), decided at
its start and kept to its end; its record names the count; runs trained side by side keep their own counts; and
`bnablate verify` re-runs a run at the count it used."""

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

import bnablate
from bnablate import tune_trials
from bnablate.config import compose_config, to_plain
from bnablate.train import threads
from bnablate.verify import recorded_config

TINY = ["model=mlp", "train.epochs=2", "dataset.train_subset=200", "variant=bn_pre_act"]


@pytest.mark.parametrize("cores, others, most, expected", [
    (2, 0.0, 2, 2),  # an idle machine: every core
    (2, 0.2, 2, 2),  # a shell or an editor does not take a core
    (2, 0.9, 2, 1),  # another single-thread sweep takes one
    (2, 1.3, 2, 1),
    (2, 3.5, 2, 1),  # a machine busier than its cores: still one thread, never zero
    (8, 2.0, 8, 6),
    (8, 0.0, 4, 4),  # never above torch's own count (OMP_NUM_THREADS, physical cores)
])
def test_free_threads_leave_the_cores_others_use(cores, others, most, expected):
    assert threads.free_threads(cores, others, most) == expected


def test_others_busy_sees_another_process_and_not_this_one(monkeypatch):
    """A busy loop in another process shows as about one core busy; this process's own work does not count."""
    monkeypatch.setattr(threads, "_last", None)
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # the loop is running
        threads.others_busy()  # starts the window
        end = time.monotonic() + 0.6
        while time.monotonic() < end:  # this process busy too: only the other one may be counted
            sum(i * i for i in range(10_000))
        seen = threads.others_busy()
    finally:
        loop.kill()
        loop.wait()
    # the loop has a core (≈1.0); on a loaded machine (make test's other worker) others are counted as well, so
    # only the floor is certain
    assert seen >= 0.3


def test_a_run_at_threads_0_takes_the_free_cores_and_records_them(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "_ceiling", 2)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "others_busy", lambda: 1.0)  # another sweep on one of the two cores
    busy = bnablate.run([*TINY, "seed=0"], out_dir=tmp_path / "busy")
    monkeypatch.setattr(threads, "others_busy", lambda: 0.0)
    idle = bnablate.run([*TINY, "seed=0"], out_dir=tmp_path / "idle")
    pinned = bnablate.run([*TINY, "seed=0", "threads=1"], out_dir=tmp_path / "pinned")  # explicit: no look at load
    assert [r["provenance"]["torch_threads"] for r in (busy, idle, pinned)] == [1, 2, 1]
    torch.set_num_threads(1)  # this test process's count, as conftest set it


def test_runs_trained_side_by_side_keep_their_own_thread_counts(monkeypatch):
    """Each run of a trial chose its count at its start; advanced in turn, each trains every epoch at its own."""
    counts = iter([2, 1])
    monkeypatch.setattr(threads, "auto_threads", lambda: next(counts))
    cfgs = [compose_config([*TINY, f"seed={s}"]) for s in (0, 1)]
    runs = [tune_trials._Run(c, str(i), live=SimpleNamespace(epoch=lambda row: None)) for i, c in enumerate(cfgs)]
    seen = {0: set(), 1: set()}
    real = tune_trials.train_epochs

    def watched(cfgs_, **kw):  # the count in effect as each of the run's epochs ends
        index, gen = int(cfgs_[0].seed), real(cfgs_, **kw)
        stop = None
        try:
            while True:
                rows = gen.send(stop) if stop is not None else next(gen)
                seen[index].add(torch.get_num_threads())
                stop = yield rows
        except StopIteration as done:
            return done.value

    monkeypatch.setattr(tune_trials, "train_epochs", watched)
    for _ in range(3):
        for run in runs:
            tune_trials._advance(run, False, None)
    assert [run.result[0]["execution"]["torch_threads"] for run in runs] == [2, 1]
    assert seen == {0: {2}, 1: {1}}
    torch.set_num_threads(1)


def test_verify_reruns_at_the_threads_the_run_chose(tmp_path):
    plain = to_plain(compose_config([*TINY, "seed=0"]))
    assert int(recorded_config(plain, tmp_path, threads=2).threads) == 2  # auto chose 2 then: verify uses 2
    assert int(recorded_config({**plain, "threads": 1}, tmp_path, threads=2).threads) == 1  # explicit stays
    assert int(recorded_config(plain, tmp_path).threads) == 0  # records from before the count was recorded
