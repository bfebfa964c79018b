"""Torch's CPU thread count for `threads=0` (auto): decided before each run from the cores this process may use less
the cores other processes are using, so that two sweeps, or a sweep beside another CPU-bound job, share the machine
instead of oversubscribing it.

Why: torch starts as many OpenMP threads as the machine has cores, and an OpenMP thread that waits at a barrier spins.
Two such processes on the same cores spend most of their time spinning against each other: measured here (issue 50),
two 5-epoch digits sweeps at once took 61.8 s each against 16.5 s alone, and 24.7 s each at one thread apiece. Other
processes' load is the machine's busy CPU time (psutil: portable, where /proc/stat is Linux only) less this process's
own (its threads and waited-for children: data-parallel workers), over the time since the last decision — the
previous run — or over a short sample before the first. A run keeps its count to the end: torch's CPU kernels split
reductions by thread, so the count moves a run's numbers in the last digits (pin `threads=N` for runs bitwise
repeatable on a busy machine; every record names the count it used in `provenance.torch_threads`).
"""

from __future__ import annotations

import math
import os
import time
from typing import Optional, Tuple

import psutil
import torch

FIRST_SAMPLE_S = 0.2  # the first decision's look at the machine (later ones use the time since the previous one)

# A process using less than this share of a core (an editor, a shell, a terminal redrawing) does not take the core:
# the threads that need it are ours.
IDLE_SHARE = 0.25

_ceiling: Optional[int] = None  # the most threads auto gives: torch's count before bnablate first set it
_last: Optional[Tuple[float, float, float]] = None  # (wall s, machine busy CPU s, own CPU s) at the last decision


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a cgroup, taskset or SLURM allocation), else all."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def ceiling() -> int:
    """Torch's own thread count when bnablate first decided one: the physical cores, or what OMP_NUM_THREADS or an
    earlier torch.set_num_threads chose (pytest's workers set 1). Auto never goes above it."""
    global _ceiling
    if _ceiling is None:
        _ceiling = max(1, torch.get_num_threads())
    return _ceiling


def _snapshot() -> Tuple[float, float, float]:
    machine = psutil.cpu_times()
    # busy = all but idle time; iowait is idle waiting on disk, guest time is already inside user time on Linux
    not_busy = sum(getattr(machine, name, 0.0) for name in ("idle", "iowait", "guest", "guest_nice"))
    own = psutil.Process().cpu_times()
    own_s = own.user + own.system + getattr(own, "children_user", 0.0) + getattr(own, "children_system", 0.0)
    return time.monotonic(), sum(machine) - not_busy, own_s


def others_busy() -> float:
    """Cores other processes kept busy since the last call (over FIRST_SAMPLE_S the first time), ≥ 0."""
    global _last
    if _last is None:
        _last = _snapshot()
        time.sleep(FIRST_SAMPLE_S)
    now = _snapshot()
    wall, busy, own = (b - a for a, b in zip(_last, now))
    _last = now
    return max(0.0, (busy - own) / wall) if wall > 0 else 0.0


def free_threads(cores: int, others: float, most: int) -> int:
    """Threads for a run: the cores not taken by others (a core counts as taken from IDLE_SHARE of it), at most
    `most`, at least 1 (a run on a fully busy machine still runs)."""
    taken = max(0, math.ceil(others - IDLE_SHARE))
    return max(1, min(most, cores - taken))


def auto_threads() -> int:
    """The thread count a CPU run uses when threads=0, from the machine as it is now."""
    return free_threads(usable_cores(), others_busy(), ceiling())


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads for the run about to start: `threads` when > 0, else auto; returns the count."""
    ceiling()  # read torch's own count before the first set replaces it
    if threads <= 0:
        threads = auto_threads()
    torch.set_num_threads(threads)
    return threads


__all__ = ["auto_threads", "ceiling", "free_threads", "others_busy", "set_threads", "usable_cores"]
