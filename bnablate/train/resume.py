"""Per-epoch checkpoints of a lone run (`train.checkpoint=true`), so that a long run stopped by Ctrl-C, kill -9 or a
session's end resumes at its next epoch and ends with the record an uninterrupted run writes (bit for bit on CPU).

A checkpoint holds everything the next epoch depends on: the model's weights and buffers (BN's running statistics,
Batch Renorm's step count), the optimizer's state, the schedule's and the warm-up's step counts, every random stream
of the run (its batch order, augmentation and PreciseBN generators, and torch's global one, which dropout draws
from), the metrics so far, the last test mask, the status, the optimizer steps and the peak memory measured. It is
written with torch.save to a temporary file renamed over OUT_DIR/resume/<run key>.pt after each epoch (a kill
mid-write leaves the previous one), read back with torch.load(weights_only=True), and deleted once the run's record
is written. A file that cannot be read, or that belongs to another run, is set aside and the run starts over.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

RESUME_DIR = "resume"
VERSION = 1  # a checkpoint's layout; another version is not read (the run starts over)


def resume_path(out_dir: str, key: str) -> Path:
    return Path(out_dir) / RESUME_DIR / f"{key}.pt"


@dataclass
class Progress:
    """Where a run stands after an epoch (what the epoch loop keeps between epochs, beyond the modules' states)."""
    epoch: int
    steps: int
    status: str
    metrics: List[Dict[str, Any]]
    last_correct: Optional[torch.Tensor]  # (N_test,) bool, on the CPU
    peak_bytes: Optional[int]


def _rng_state() -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save(path: Path, key: str, progress: Progress, model: torch.nn.Module, opt: torch.optim.Optimizer, schedule,
         generators: Dict[str, torch.Generator]) -> None:
    """Write the run's state after progress.epoch (atomically: temp file, then rename)."""
    state = {"version": VERSION, "run_key": key, "epoch": progress.epoch, "steps": progress.steps,
             "status": progress.status, "metrics": progress.metrics, "last_correct": progress.last_correct,
             "peak_bytes": progress.peak_bytes, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "schedule": schedule.state_dict(), "rng": _rng_state(),
             "generators": {name: g.get_state() for name, g in generators.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path, key: str) -> Optional[Dict[str, Any]]:
    """The run's checkpoint, or None (none yet; or unreadable or another run's: moved to <name>.bad, with a warning,
    so the run starts over and the file stays for a look)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("version") != VERSION or state.get("run_key") != key:
            raise ValueError(f"version {state.get('version')}, run {state.get('run_key')}")
        return state
    except Exception as e:  # noqa: BLE001  (any unreadable file: start over rather than fail the run)
        os.replace(path, path.with_name(path.name + ".bad"))
        warnings.warn(f"checkpoint {path} could not be resumed ({e}); the run starts over", stacklevel=2)
        return None


def restore(state: Dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer, schedule,
            generators: Dict[str, torch.Generator]) -> Progress:
    """Put the checkpoint's state back into the freshly built run; where it stands."""
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    for name, g in generators.items():
        g.set_state(state["generators"][name])
    return Progress(state["epoch"], state["steps"], state["status"], state["metrics"], state["last_correct"],
                    state["peak_bytes"])


def drop(out_dir: str, key: str) -> None:
    """Delete the run's checkpoint (its record is written)."""
    resume_path(out_dir, key).unlink(missing_ok=True)


__all__ = ["Progress", "RESUME_DIR", "drop", "load", "restore", "resume_path", "save"]
