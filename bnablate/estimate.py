"""Seconds per run before a sweep trains, per distinct architecture — every key that sets the cost of a step (model,
variant, data, batch size, execution options) and the pack size, not the seed, learning rate, labels or paths — from
the folder's finished runs of that architecture and epoch count (their median wall time), else from a calibration of
a few steps on this machine (bench/calibrate.py) scaled to the run's steps."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from omegaconf import DictConfig

from .config import KEYS, to_plain
from .keys import Role, without
from .results.records import RECORDS_DIR, drop_neutral
from .results.schema import scan_records
from .sweep_plan import DataCache
from .variants import config_label

# keys that leave a step's cost alone: the seed and lr (what a pack's runs may differ in), labels and paths; the
# epoch count scales the steps, so it is kept apart from the architecture
COST_IGNORES = tuple(s.key for s in KEYS.specs if s.pack_varies or s.role in (Role.LABEL, Role.LOCATION)) + \
    ("train.epochs",)

CostKey = Tuple[str, int, int]  # (architecture, epochs, runs per pack)


def architecture(plain: Dict) -> str:
    """A plain config's architecture: the config without COST_IGNORES, nor keys at their neutral value (so a run
    recorded before such a key existed matches)."""
    return json.dumps(drop_neutral(without(plain, COST_IGNORES)), sort_keys=True)


def cost_key(cfg: DictConfig, pack: int) -> CostKey:
    return architecture(to_plain(cfg)), int(cfg.train.epochs), int(pack)


@dataclass(frozen=True)
class Cost:
    """The estimated wall seconds of one run of an architecture at an epoch count (a packed run: its share of the
    pack), and where the estimate came from."""
    label: str  # e.g. "lenet digits bn_pre_act, batch 64, 10 epochs"
    seconds: Optional[float]  # None: not estimated (`source` says why)
    source: str


def label(cfg: DictConfig, pack: int) -> str:
    packed = f", packs of {pack}" if pack > 1 else ""
    return (f"{cfg.model.name} {cfg.dataset.name} {config_label(cfg)}, batch {cfg.train.batch_size}, "
            f"{cfg.train.epochs} epochs{packed}")


def folder_times(folders: Sequence[Path]) -> Dict[CostKey, List[float]]:
    """The wall seconds of every finished (status ok) run recorded in these folders, by cost key (a packed run's
    record holds its share of the pack's time)."""
    times: Dict[CostKey, List[float]] = {}
    for folder in folders:
        if not (Path(folder) / RECORDS_DIR).is_dir():
            continue
        for rec in scan_records(Path(folder)).records:
            wall = rec.get("wall_time_s")
            if rec.get("status") != "ok" or not isinstance(wall, (int, float)) or not math.isfinite(wall):
                continue
            key = (architecture(rec["config"]), int(rec["config"]["train"]["epochs"]), int(rec.get("pack_size") or 1))
            times.setdefault(key, []).append(float(wall))
    return times


def estimate_costs(jobs: Dict[CostKey, Tuple[DictConfig, int]], folders: Sequence[Path], data: DataCache,
                   calibrate: bool = True) -> Dict[CostKey, Cost]:
    """Each distinct (architecture, epochs, pack size) of `jobs` (cost_key → a config of it and its runs per pack) →
    its Cost: the median of the folders' finished runs of the same key, else a calibration (once per architecture
    and pack size, scaled to each epoch count), else none (calibrate=False, or a data-parallel run, which one process
    cannot time)."""
    times = folder_times(folders)
    measured: Dict[Tuple[str, int], object] = {}
    costs: Dict[CostKey, Cost] = {}
    for key, (cfg, pack) in jobs.items():
        seen = times.get(key)
        if seen:
            costs[key] = Cost(label(cfg, pack), statistics.median(seen),
                              f"the folder: median of {len(seen)} finished run(s)")
        elif int(cfg.train.nproc) > 1:
            costs[key] = Cost(label(cfg, pack), None, "not estimated: a data-parallel run (train.nproc > 1) is not "
                                                      "calibrated in one process")
        elif not calibrate:
            costs[key] = Cost(label(cfg, pack), None, "not estimated: no finished run of it in the folder, and "
                                                      "calibration is off")
        else:
            costs[key] = _calibrated(cfg, pack, data, measured)
    return costs


def _calibrated(cfg: DictConfig, pack: int, data: DataCache, measured: Dict) -> Cost:
    from .bench.calibrate import measure  # torch's training code: loaded only when something is calibrated

    arch = (architecture(to_plain(cfg)), pack)  # one measurement serves every epoch count
    splits = data.get(cfg.dataset)
    if arch not in measured:
        try:
            measured[arch] = measure(cfg, splits, pack)
        except Exception as e:  # noqa: BLE001  (a dry run reports what it could not time; the sweep would tell)
            measured[arch] = f"{type(e).__name__}: {e}"
    m = measured[arch]
    if isinstance(m, str):
        return Cost(label(cfg, pack), None, f"not estimated: the calibration failed ({m})")
    return Cost(label(cfg, pack), m.run_seconds(cfg, splits),
                f"calibrated here: {m.step_s * 1000:.3g} ms per step (the mean of {m.steps}), one evaluation batch, "
                f"scaled to the run's steps and evaluated images")


__all__ = ["COST_IGNORES", "Cost", "architecture", "cost_key", "estimate_costs", "folder_times"]
