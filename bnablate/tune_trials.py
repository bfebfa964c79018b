"""One tuning trial of an Optuna study: its runs (one value on every tuning seed — in shared mode on every variant ×
tuning seed) trained epoch by epoch side by side, the mean validation score over them reported to the trial after
each epoch and the trial pruned when the study's pruner says so. Each run is an ordinary run with a record (a pruned
one has status `pruned`); a run already recorded is replayed from its record instead of trained again.

Why side by side and not one run after another: the pruner judges a trial on its mean over tuning seeds at each
epoch, which exists only once every run of the trial has reached that epoch. Each run is a generator over its epochs
(train.runner.train_epochs) with its own copy of torch's global random state, so a run trained here is bit for bit
the run a plain sweep trains under the same key."""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from omegaconf import DictConfig

from .config import to_plain
from .data import DataError
from .loggers import live_log
from .reporter import Reporter
from .results import rebuild_tables, run_key, write_record
from .errors import RunsPending, pending_message
from .results.claims import claim, heartbeat, lock_path, release
from .results.records import now, record_path
from .results.schema import FINISHED, RecordError, read_record
from .sweeps import _failed, _record
from .train import ConfigError
from .train.runner import train_epochs
from .variants import config_label
from .waiting import Wait, poll

def so_far(metric: str, rows: List[Dict[str, Any]]) -> float:
    """The tuning metric over a run's epochs so far: best_val_acc is the running maximum, the final_* metrics the
    last epoch's value (a diverged run counts at its last recorded epoch)."""
    column = "val_loss" if metric.endswith("loss") else "val_acc"
    values = [r[column] for r in rows if isinstance(r.get(column), (int, float)) and math.isfinite(r[column])]
    if not values:
        return math.nan
    return max(values) if metric == "best_val_acc" else values[-1]


def done_record(out_dir: Path, key: str, pruner: str) -> Optional[Dict[str, Any]]:
    """The run's record if it counts as done for a study with this pruner: ok or diverged, or pruned by the same
    pruner (a pruned run is a finished outcome only of the study that pruned it)."""
    try:
        rec = read_record(record_path(out_dir, key))
    except RecordError:
        return None
    if rec["status"] in FINISHED:
        return rec
    if rec["status"] == "pruned" and (rec.get("pruned") or {}).get("pruner") == pruner:
        return rec
    return None


@dataclass
class _Run:
    """One run of the trial: replayed from its record, or trained by a generator (with its own global RNG state)."""
    cfg: DictConfig
    key: str
    record: Optional[Dict[str, Any]] = None  # set once finished (replayed, trained or failed)
    training: Any = None  # train_epochs generator
    rng: Optional[torch.Tensor] = None
    threads: int = 0  # torch threads its start chose (threads=0: the machine's load then), kept for its later epochs
    rows: List[Dict[str, Any]] = field(default_factory=list)
    result: Optional[List[Dict[str, Any]]] = None
    error: Optional[str] = None
    traceback: Optional[str] = None
    lock: Optional[Path] = None
    started: str = ""
    t0: float = 0.0
    live: Any = None

    @property
    def epochs(self) -> int:
        return int(self.cfg.train.epochs)


def _swap_rng(run: _Run, step: Callable[[], Any]) -> Any:
    """Run one step of run's generator with its own torch global random state (dropout masks of lone runs come
    from it) and its own thread count (which moves a CPU run's numbers in the last digits), so runs advanced in turn
    do not draw from each other's stream nor train at each other's thread count."""
    outside, outside_threads = torch.get_rng_state(), torch.get_num_threads()
    if run.rng is not None:
        torch.set_rng_state(run.rng)
        torch.set_num_threads(run.threads)
    try:
        return step()
    finally:
        run.rng, run.threads = torch.get_rng_state(), torch.get_num_threads()
        torch.set_rng_state(outside)
        torch.set_num_threads(outside_threads)


def _advance(run: _Run, stop: bool, data) -> None:
    """Train run's next epoch (stop: end it here, pruned); its rows, or its result when the generator ends."""
    if run.result is not None or run.error is not None:
        return
    try:
        if run.training is None:
            run.started, run.t0 = now(), time.perf_counter()
            # resumable=False: a trial yields every epoch to its pruner, so train.checkpoint is off inside a study
            run.training = train_epochs([run.cfg], on_epoch=lambda row: heartbeat(run.lock), data=data,
                                        on_run_epoch=lambda i, row: run.live.epoch(row), resumable=False)
            metrics = _swap_rng(run, lambda: next(run.training))
        else:
            metrics = _swap_rng(run, lambda: run.training.send(stop))
        run.rows = list(metrics[0])
    except StopIteration as done:
        run.result = done.value
        run.rows = list(run.result[0]["metrics"])
    except (ConfigError, DataError) as e:
        run.error = f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001  (failures are rows, not crashes)
        run.error, run.traceback = f"{type(e).__name__}: {e}", traceback.format_exc()


@dataclass
class TrialOutcome:
    value: float  # the trial's score: the tuning metric's mean over its runs (NaN when a run has none)
    pruned_at: Optional[int]  # the epoch the pruner stopped it, or None
    records: List[Dict[str, Any]]  # one per run, in the trial's order


def run_trial(cfgs: List[DictConfig], metric: str, pruner: str, report: Callable[[float, int], bool],
              reporter: Reporter, data_for: Callable[[DictConfig], Any], pruned_info: Dict[str, Any],
              wait: Wait = Wait()) -> TrialOutcome:
    """Train (or replay) the trial's runs epoch by epoch. report(value, epoch) gets the mean tuning metric over the
    runs after each epoch and returns True to prune; pruned_info goes into each pruned record's `pruned` field with
    the pruner and the epoch; wait: how long to wait for a run another process is training (waiting.Wait)."""
    runs = [_Run(c, run_key(to_plain(c))) for c in cfgs]
    try:
        for run in runs:
            _start(run, pruner, reporter, wait)
        epochs = max(r.epochs for r in runs)
        pruned_at = None
        for epoch in range(1, epochs + 1):
            for run in runs:
                if run.record is not None and run.record["status"] == "pruned" and len(run.record["metrics"]) < epoch:
                    run.record = None  # this study did not prune it here after all: it trains, from the start
                    _claim(run, pruner, reporter, wait)
                while _training(run) and len(run.rows) < epoch:
                    _advance(run, False, data_for(run.cfg))
            value = _mean([so_far(metric, _rows(r)[:epoch]) for r in runs])
            if report(value, epoch) and epoch < epochs:
                pruned_at = epoch
                break
        for run in runs:  # each generator waits after its last epoch (or the pruned one) for the word to end
            if _training(run):
                _advance(run, pruned_at is not None, data_for(run.cfg))
        records = [_finish(run, pruner, pruned_info, pruned_at, reporter) for run in runs]
    finally:
        for run in runs:
            release(run.lock)
    for folder in {Path(c.out_dir) for c in cfgs}:
        rebuild_tables(folder)
    value = _mean([so_far(metric, r.get("metrics") or []) for r in records]) if pruned_at is None else math.nan
    return TrialOutcome(value, pruned_at, records)


def _training(run: _Run) -> bool:
    return run.record is None and run.result is None and run.error is None


def _rows(run: _Run) -> List[Dict[str, Any]]:
    return run.record["metrics"] if run.record is not None else run.rows


def _mean(values: List[float]) -> float:
    return sum(values) / len(values) if values and all(math.isfinite(v) for v in values) else math.nan


def _start(run: _Run, pruner: str, reporter: Reporter, wait: Wait) -> None:
    """Replay run from its record if it is done for this study; else claim it to train."""
    rec = done_record(Path(run.cfg.out_dir), run.key, pruner)
    if rec is not None:
        run.record = {**rec, "skipped": True}
        reporter.run_done(run.record)
    else:
        _claim(run, pruner, reporter, wait)


def _claim(run: _Run, pruner: str, reporter: Reporter, wait: Wait) -> None:
    """Claim run to train it, waiting (waiting.poll, up to wait.timeout) while another live process trains this very
    run (two processes whose trials drew one value); when that process's record appears it is replayed instead."""
    out_dir = Path(run.cfg.out_dir)

    def still() -> int:
        run.lock = claim(out_dir, run.key)
        rec = done_record(out_dir, run.key, pruner)  # after the claim: the other process may have just finished it
        if rec is not None:
            if run.lock is not None:
                release(run.lock)
                run.lock = None
            run.record = {**rec, "skipped": True}
            reporter.run_done(run.record)
            return 0
        return 0 if run.lock is not None else 1

    poll(still, wait, reporter, lambda n: f"waiting for run {run.key}: another process's trial is training it "
         f"(claim {lock_path(out_dir, run.key)}); looking every {wait.poll:g} s, for up to {wait.timeout:g} s",
         lambda n: RunsPending(pending_message(n, 1, "runs of a tuning trial", str(lock_path(out_dir, run.key)),
                                               "Nothing was selected or evaluated", wait.timeout)))
    if run.record is not None:
        return
    reporter.run_started(run.cfg, run.key)
    run.live = live_log(run.cfg, run.key, config_label(to_plain(run.cfg)))


def _finish(run: _Run, pruner: str, info: Dict[str, Any], pruned_at: Optional[int], reporter: Reporter
            ) -> Dict[str, Any]:
    """The run's record: replayed as it was, or written now (trained to the end, pruned, or failed)."""
    if run.record is not None and run.training is None:
        return run.record
    plain = to_plain(run.cfg)
    if run.error is not None:
        result, error = _failed(run.cfg), run.error
        if run.traceback is not None:
            result["traceback"] = run.traceback
    else:
        result, error = dict(run.result[0]), None
    record = _record(plain, run.key, result, error, run.started, time.perf_counter() - run.t0)
    if record["status"] == "pruned":
        record["pruned"] = {**info, "pruner": pruner, "epoch": pruned_at}
    write_record(Path(run.cfg.out_dir), record)
    run.live.finish(record)
    reporter.run_done(record)
    return record
