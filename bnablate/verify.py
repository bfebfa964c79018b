"""Re-running recorded runs from their saved configs and listing every per-epoch metric that does not match."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

from .config import compose_config
from .results.correctness import record_correct
from .results.schema import load_records
from .train import run_experiment, run_packed
from .train.runner import train_epochs

# Wall-clock measurements differ on every run; everything else a record holds per epoch must repeat bit for bit.
TIMING_KEYS = ("epoch_time_s", "samples_per_s")


@dataclass
class Mismatch:
    run_key: str
    epoch: Optional[int]
    metric: str
    recorded: Any
    rerun: Any


def recorded_config(plain: Dict[str, Any], out_dir: Path, threads: Optional[int] = None):
    """A record's resolved config as a DictConfig on today's schema (keys added since then take their defaults, which
    reproduce the earlier behaviour), writing nowhere but `out_dir` — a fine-tuned run pretrains again there too, so
    the pretraining is verified as well and the recorded folder's checkpoints are not touched. threads: the torch
    threads the run used (its provenance), pinned where it chose them itself (threads=0, one process): the count
    moves a CPU run's numbers in the last digits, and auto picks it from the machine's load at the time."""
    base = compose_config([f"dataset={plain['dataset']['name']}", f"model={plain['model']['name']}"])
    cfg = OmegaConf.merge(base, plain)
    if threads and int(cfg.threads) == 0 and int(cfg.train.nproc) == 1:
        cfg.threads = int(threads)
    cfg.out_dir = str(out_dir)
    cfg.finetune.checkpoint_dir = str(Path(out_dir) / "checkpoints")
    return cfg


def choose(records: List[Dict[str, Any]], sample: int, seed: int) -> List[Dict[str, Any]]:
    """`sample` finished runs (a pruned tuning run too, re-run to its pruned epoch) drawn with `seed` (0 or more than
    there are: all of them), in run-key order."""
    done = sorted((r for r in records if r["status"] in ("ok", "diverged", "pruned")), key=lambda r: r["run_key"])
    if 0 < sample < len(done):
        done = sorted(random.Random(seed).sample(done, sample), key=lambda r: r["run_key"])
    return done


def compare_metrics(key: str, recorded: List[Dict[str, Any]], rerun: List[Dict[str, Any]]) -> List[Mismatch]:
    out = []
    if len(recorded) != len(rerun):
        out.append(Mismatch(key, None, "epochs", len(recorded), len(rerun)))
    for old, new in zip(recorded, rerun):
        for metric, value in old.items():
            both_nan = value != value and new.get(metric) != new.get(metric)  # NaN != NaN, yet a diverged run repeats
            if metric not in TIMING_KEYS and new.get(metric) != value and not both_nan:
                out.append(Mismatch(key, old.get("epoch"), metric, value, new.get(metric)))
    return out


def compare_correct(rec: Dict[str, Any], rerun: Dict[str, Any]) -> List[Mismatch]:
    """The recorded and re-run test correctness masks (when both runs have one) as a mismatch at the last epoch, with
    how many test examples flipped; records from before the field existed compare nothing."""
    old, new = record_correct(rec), record_correct(rerun)
    if old is None or new is None or (len(old) == len(new) and (old == new).all()):
        return []
    flipped = f", {int((old != new).sum())} example(s) differ" if len(old) == len(new) else ""
    return [Mismatch(rec["run_key"], rec["metrics"][-1]["epoch"], "test_correct",
                     f"{int(old.sum())}/{len(old)} correct", f"{int(new.sum())}/{len(new)} correct{flipped}")]


def lone_rerun_reason(rec: Dict[str, Any], by_key: Dict[str, Dict[str, Any]]) -> Optional[str]:
    """Why a run trained in a pack must be re-run alone (and so can match only to float tolerance), or None when it
    was trained alone or its pack can be trained again."""
    if rec.get("pack_size", 1) < 2:
        return None
    members = rec.get("pack_members")
    if not members:
        return f"trained in a pack of {rec['pack_size']} recorded without its members"
    missing = [k for k in members if k not in by_key]
    if missing:
        return f"trained in a pack of {rec['pack_size']} whose member record(s) {', '.join(missing)} are not in " \
               "this folder"
    return None


def pack_of(rec: Dict[str, Any], by_key: Dict[str, Dict[str, Any]]) -> Optional[List[Dict[str, Any]]]:
    """The records of the pack `rec` trained in, in pack order; None for a run trained alone, or a pack recorded
    before members were (or one whose member records are gone): those are re-run alone."""
    if rec.get("pack_size", 1) < 2 or lone_rerun_reason(rec, by_key):
        return None
    return [by_key[k] for k in rec["pack_members"]]


def rerun(rec: Dict[str, Any], scratch: Path, by_key: Dict[str, Dict[str, Any]],
          packs: Dict[tuple, List[Dict[str, Any]]]) -> Dict[str, Any]:
    """The record's run trained again: in its pack, with the pack's implementation, if it was trained in one (a
    lone re-run of a packed run matches it only to float tolerance), else alone. Packs are trained once and shared."""
    if rec["status"] == "pruned":
        return _rerun_pruned(rec, scratch)
    pack = pack_of(rec, by_key)
    if pack is None:
        return run_experiment(recorded_config(rec["config"], scratch, _threads(rec)))
    members = tuple(rec["pack_members"])
    if members not in packs:
        cfgs = [recorded_config(r["config"], scratch, _threads(r)) for r in pack]
        for c in cfgs:
            c.pack_impl = (rec.get("provenance") or {}).get("pack_impl", "vmap")  # packs before grouped were vmap
        packs[members] = run_packed(cfgs)
    return packs[members][members.index(rec["run_key"])]


def _rerun_pruned(rec: Dict[str, Any], scratch: Path) -> Dict[str, Any]:
    """A tuning run its study's pruner stopped, trained again epoch by epoch (train_epochs) and stopped at the same
    epoch: its record's `pruned.epoch`."""
    training = train_epochs([recorded_config(rec["config"], scratch, _threads(rec))])
    stop_at = int(rec["pruned"]["epoch"])
    try:
        next(training)  # epoch 1
        for epoch in range(1, stop_at + 1):
            training.send(epoch >= stop_at)
    except StopIteration as done:
        return done.value[0]
    raise RuntimeError(f"run {rec['run_key']} did not stop at epoch {stop_at}")  # train_epochs stops when told


def _threads(rec: Dict[str, Any]) -> Optional[int]:
    return (rec.get("provenance") or {}).get("torch_threads")


def verify_record(rec: Dict[str, Any], scratch: Path, by_key: Optional[Dict[str, Dict[str, Any]]] = None,
                  packs: Optional[Dict[tuple, List[Dict[str, Any]]]] = None) -> List[Mismatch]:
    """Train the record's run again (nothing written under the record's folder) and compare every epoch."""
    result = rerun(rec, scratch, by_key or {}, {} if packs is None else packs)
    found = compare_metrics(rec["run_key"], rec["metrics"], result["metrics"]) + compare_correct(rec, result)
    if result["status"] != rec["status"]:
        found.insert(0, Mismatch(rec["run_key"], None, "status", rec["status"], result["status"]))
    return found


def verify_runs(runs_dir: Path, sample: int, seed: int, scratch: Path, on_run=None,
                records: Optional[List[Dict[str, Any]]] = None) -> Dict[str, List[Mismatch]]:
    """Mismatches per re-run record of runs_dir (an empty list: that run reproduced exactly). records: runs_dir's
    valid records when the caller has read them already (bad files are the caller's to report)."""
    records = load_records(runs_dir) if records is None else records
    by_key = {r["run_key"]: r for r in records}
    packs: Dict[tuple, List[Dict[str, Any]]] = {}
    results = {}
    for rec in choose(records, sample, seed):
        results[rec["run_key"]] = verify_record(rec, scratch, by_key, packs)
        if on_run is not None:  # with why a packed run was re-run alone (None: re-run as it trained)
            on_run(rec, results[rec["run_key"]], lone_rerun_reason(rec, by_key))
    return results
