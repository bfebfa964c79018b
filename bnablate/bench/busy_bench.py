"""`bnablate bench --busy`: one sweep on a busy machine — two of it at once, and one beside a CPU-bound process — each
against the same sweep alone, at threads=0 (auto), at every core (threads=N: torch's default, what threads=0 meant
before auto) and at one thread.

Each side is a real `bnablate sweep` command (what a user types; the issue's `variant=no_bn,bn_pre_act 'seed=range(3)'
train.epochs=5` on the embedded digits by default, so it needs no data), timed end to end in its own process and
folder. "Two at once" starts two identical sweeps into two folders together and times each; "beside a busy loop"
runs one while another Python process spins on one core. The ratio is a side's wall time over the same setting's
time alone: 1.0 is no slowdown, and two sweeps sharing two cores perfectly are at most 2.0 each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

from ..train.threads import usable_cores

SCENARIOS = ("alone", "two at once", "beside a busy loop")
BUSY_LOOP = "while True: pass"  # one core, never sleeping: the "other CPU-bound process"
DEFAULT_SWEEP = ("variant=no_bn,bn_pre_act", "seed=range(3)", "train.epochs=5")


def settings() -> Dict[str, str]:
    """name → the threads override of each setting compared."""
    return {"auto (threads=0)": "threads=0", f"every core (threads={usable_cores()})": f"threads={usable_cores()}",
            "one (threads=1)": "threads=1"}


def _start(out: Path, threads: str, sweep: Sequence[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bnablate", "sweep", *sweep, threads, f"out_dir={out}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})


def _timed(procs: List[subprocess.Popen]) -> List[float]:
    """Wall seconds of each process from now (they were just started) to its end; raises if one failed."""
    t0, seconds = time.perf_counter(), []
    for p in procs:
        output, _ = p.communicate()
        seconds.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise RuntimeError(f"a benchmark sweep failed (exit {p.returncode}):\n{output[-2000:]}")
    return seconds


def _scenario(name: str, root: Path, threads: str, sweep: Sequence[str]) -> List[float]:
    if name == "two at once":
        return _timed([_start(root / f"two-{i}", threads, sweep) for i in range(2)])
    if name == "beside a busy loop":
        loop = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
        try:
            time.sleep(0.5)  # the loop is spinning before the sweep starts, as a running job would be
            return _timed([_start(root / "beside", threads, sweep)])
        finally:
            loop.kill()
            loop.wait()
    return _timed([_start(root / "alone", threads, sweep)])


def busy_bench(reps: int = 1, sweep: Sequence[str] = DEFAULT_SWEEP) -> List[Dict]:
    """Every setting × scenario `reps` times (settings in turn, each with its three scenarios, so a slow spell of
    the machine touches every setting alike). One row per sweep process: setting, scenario, rep, wall seconds."""
    rows = []
    for rep in range(reps):
        for setting, threads in settings().items():
            for scenario in SCENARIOS:
                with tempfile.TemporaryDirectory(prefix="bnablate-busybench-") as tmp:
                    for seconds in _scenario(scenario, Path(tmp), threads, sweep):
                        rows.append({"setting": setting, "scenario": scenario, "rep": rep, "seconds": seconds})
    return rows


def summarize_busy(rows: List[Dict]) -> List[Dict]:
    """Per setting and scenario: median wall seconds and the ratio to the same setting's median alone."""
    import pandas as pd

    med = pd.DataFrame(rows).groupby(["setting", "scenario"], sort=False)["seconds"].median()
    return [{"setting": s, "scenario": sc, "median_s": v, "ratio": v / med[(s, "alone")]}
            for (s, sc), v in med.items()]
