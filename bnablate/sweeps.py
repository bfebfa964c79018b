"""Executing runs: one run with its record and tables, one pack, and a planned sweep as a Hydra multirun (so launcher
plugins work); the plan itself is bnablate/sweep_plan.py."""

from __future__ import annotations

import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from omegaconf import DictConfig

from .config import to_plain
from .data import DataError, DataSplits
from .hydra_adapter import launch_multirun
from .loggers import live_log
from .reporter import Reporter
from .results import finished, provenance, rebuild_tables, run_key, write_record
from .results.claims import claim, heartbeat, release
from .results.records import OutputError, now, record_path
from .results.schema import BadRecord, RecordError, RecordVersionError, quarantine, read_record, scan_records
from .sweep_plan import DataCache, SweepPlan
from .train import ConfigError, run_experiment, run_packed
from .train.resume import drop as drop_checkpoint
from .train.threads import usable_cores
from .variants import config_label


def execute_run(cfg: DictConfig, reporter: Optional[Reporter] = None, skip_finished: bool = True,
                raise_setup_errors: bool = False, data: Optional[DataSplits] = None) -> Dict[str, Any]:
    """Run one composed config and write its record under cfg.out_dir/records, then rebuild the tables. A run that
    raises becomes a `status=failed` record with the error (unless raise_setup_errors: then a bad config or missing
    data raises before anything is written); Ctrl-C propagates and writes nothing for this run."""
    reporter = reporter or Reporter()
    plain = to_plain(cfg)
    key = run_key(plain)
    out_dir = Path(cfg.out_dir)
    done = finished(out_dir, key) if skip_finished else None
    if done is not None:
        done["skipped"] = True
        reporter.run_done(done)
        return done
    if done is None:
        _quarantine_stale(record_path(out_dir, key))
    lock = claim(out_dir, key)
    if lock is None:  # another live process is training this run into the same folder
        busy = {"run_key": key, "status": "running elsewhere", "config": plain, "skipped": True, "metrics": []}
        reporter.run_done(busy)
        return busy
    try:
        reporter.run_started(cfg, key)
        started, t0 = now(), time.perf_counter()
        live = live_log(cfg, key, config_label(plain))  # trackers see each epoch as it ends

        def on_epoch(row: Dict[str, Any]) -> None:
            heartbeat(lock)
            reporter.epoch_done(row)
        try:
            result = run_experiment(cfg, on_epoch=on_epoch, data=data, on_run_epoch=lambda i, row: live.epoch(row))
            error = None
        except (ConfigError, DataError) as e:
            if raise_setup_errors:
                raise
            result, error = _failed(cfg), f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001  (failures are rows, not crashes)
            result, error = _failed(cfg), f"{type(e).__name__}: {e}"
            result["traceback"] = traceback.format_exc()
        record = _record(plain, key, result, error, started, time.perf_counter() - t0)
        try:
            write_record(out_dir, record)
            if record["status"] in ("ok", "diverged"):  # train.checkpoint's state is done with; a failed run keeps it
                drop_checkpoint(str(out_dir), key)
        except OSError as e:  # disk full, permissions changed mid-sweep: the temp file is gone, nothing half-written
            raise OutputError(f"Could not write the record of run {key} to {out_dir}/records ({e.strerror or e}). "
                              f"Nothing was half-written and every earlier run is kept; free some space (or fix the "
                              f"folder's permissions) and run the same command again to resume.") from None
    finally:
        release(lock)  # also on Ctrl-C: the unfinished run leaves neither a record nor a claim
    rebuild_tables(out_dir)
    live.finish(record)  # status, params and the record itself, once it is written
    reporter.run_done(record)
    return record


def _quarantine_stale(path: Path) -> None:
    """A bad file where this run's record goes is moved aside (bytes intact) before the run retrains over it."""
    if not path.exists():
        return
    try:
        read_record(path)
    except RecordVersionError:
        raise
    except RecordError as e:
        moved = quarantine([BadRecord(path, str(e))])[0]
        warnings.warn(f"{path}: {e}; moved to {moved} (bytes intact) and the run trains again.", stacklevel=3)


def quarantine_bad_records(plan: SweepPlan) -> None:
    """Before a sweep trains: every bad file in its folders' records/ moved to records/quarantine/ (bytes intact),
    so the runs they were for train again; noted on plan.quarantined for the reporter."""
    for folder in plan.out_dirs:
        bad = scan_records(folder).bad
        plan.quarantined += list(zip(bad, quarantine(bad)))


def _record(plain: Dict[str, Any], key: str, result: Dict[str, Any], error: Optional[str], started: str,
            wall: float) -> Dict[str, Any]:
    result = dict(result)
    execution = result.pop("execution", {})  # precision, layout, compile...: how it ran, beside versions/hardware
    return {"run_key": key, "status": result.pop("status"), "error": error, "config": plain,
            "variant": config_label(plain), "started_at": started, "finished_at": now(),
            "wall_time_s": wall, **result, "provenance": {**provenance(result["device"]), **execution}}


def execute_pack(cfgs: List[DictConfig], reporter: Optional[Reporter] = None,
                 data: Optional[DataSplits] = None) -> List[Dict[str, Any]]:
    """Train runs that differ only in seed as one pack and write one record per run (pack_size in each). If the
    pack cannot train, nothing is written and the error is raised: the caller runs them one by one instead."""
    reporter = reporter or Reporter()
    out_dir = Path(cfgs[0].out_dir)
    locks = [claim(out_dir, run_key(to_plain(c))) for c in cfgs]
    try:
        cfgs = [c for c, lock in zip(cfgs, locks) if lock is not None]  # runs claimed elsewhere are left to them
        if len(cfgs) < 2:
            return []
        plains = [to_plain(c) for c in cfgs]
        keys = [run_key(p) for p in plains]
        reporter.run_started(cfgs[0], keys[0], pack=len(cfgs))
        started, t0 = now(), time.perf_counter()
        lives = [live_log(c, k, config_label(p)) for c, k, p in zip(cfgs, keys, plains)]  # a pack: K runs

        def on_epoch(row: Dict[str, Any]) -> None:
            for lock in locks:
                heartbeat(lock)
            reporter.epoch_done(row)
        results = run_packed(cfgs, on_epoch=on_epoch, data=data,
                             on_run_epoch=lambda i, row: lives[i].epoch(row))
        wall = (time.perf_counter() - t0) / len(cfgs)  # each run is charged its share of the pack's wall time
        records = [{**_record(p, k, r, None, started, wall), "pack_members": keys}  # `verify` re-runs the pack
                   for p, k, r in zip(plains, keys, results)]
        for rec in records:
            write_record(out_dir, rec)
    finally:
        for lock in locks:
            release(lock)
    rebuild_tables(out_dir)
    for live, rec in zip(lives, records):  # a pack logs as K runs
        live.finish(rec)
        reporter.run_done(rec)
    return records


def _failed(cfg: DictConfig) -> Dict[str, Any]:
    return {"status": "failed", "metrics": [], "n_params": None, "device": str(cfg.device)}


def threads_per_job(threads: int) -> int:
    """Torch threads for a job of a parallel launcher when `threads=0` (auto), so jobs × threads does not
    oversubscribe the cores: submitit's `cpus_per_task` where set (the cores SLURM gives each run), else the machine's
    cores divided among joblib's n_jobs (-1 = one job per core), at least 1. 0 (leave torch's default) under the
    basic launcher or when threads is set explicitly."""
    if threads > 0:
        return 0
    try:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().launcher
    except Exception:  # noqa: BLE001  (not inside a Hydra job)
        return 0
    if launcher.get("cpus_per_task") is not None:
        return max(1, int(launcher.cpus_per_task))
    n_jobs = launcher.get("n_jobs")
    cores = usable_cores()
    if n_jobs is None or int(n_jobs) == 1:
        return 0
    jobs = cores if int(n_jobs) < 0 else min(int(n_jobs), cores)
    return max(1, cores // jobs)


def make_task(reporter: Optional[Reporter], write_errors: List[str],
              data: Optional[DataCache] = None) -> Callable[[DictConfig], str]:
    """Hydra's task function for every job of a multirun. A record that cannot be written (disk full) is noted in
    write_errors, not raised, so Hydra prints no traceback; the sweep raises it once every other job has run. data:
    the sweep's loaded datasets, when the jobs run in this process (the basic launcher). A job the multirun expands
    twice (the plan keeps one: SweepPlan.repeats) runs once per process: a repeat of a failed run would retrain it."""
    ran = set()  # (out_dir, run key) of the jobs this task has run

    def task(cfg: DictConfig) -> str:
        job = (str(cfg.out_dir), run_key(to_plain(cfg)))
        if job in ran:
            return "repeat"
        ran.add(job)
        threads = threads_per_job(int(cfg.threads))
        if threads:
            torch.set_num_threads(threads)
        try:
            return execute_run(cfg, reporter, data=_cached(data, cfg))["status"]
        except OutputError as e:
            write_errors.append(str(e))
            return "unwritten"
    return task


def _cached(data: Optional[DataCache], cfg: DictConfig) -> Optional[DataSplits]:
    """cfg's dataset from the sweep's cache; None (the run loads it, and records the error as its failure) when
    there is no cache or it cannot be loaded."""
    try:
        return None if data is None else data.get(cfg.dataset)
    except DataError:
        return None


def run_sweep(plan: SweepPlan, reporter: Optional[Reporter] = None) -> None:
    """Train every unfinished job of the plan: packs first (in this process, under the basic launcher), then Hydra's
    multirun with the plan's launcher, which skips what is finished. Records are written as each run ends; Ctrl-C
    keeps them. Raises OutputError after the multirun when some record could not be written."""
    reporter = reporter or Reporter()
    for group in plan.packs.packs:  # packs train here; the launcher then finds them finished and skips them
        pack = [plan.configs[i] for i in group.indices]
        try:
            execute_pack(pack, reporter, data=plan.data.get(pack[0].dataset))
        except Exception as e:  # noqa: BLE001  (the launcher then trains these runs one by one)
            reporter.pack_failed(len(pack), e)
    write_errors: List[str] = []
    basic = plan.launcher == "basic"  # a parallel launcher's workers cannot report to, or share data with, this process
    launch_multirun(plan.overrides, make_task(reporter if basic else None, write_errors, plan.data if basic else None))
    if write_errors:
        raise OutputError(f"{len(write_errors)} record(s) could not be written: {write_errors[0]}")
