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
    """One sweep command, its output in a file beside its folder (a pipe nobody reads while the other process runs
    could fill and stall it)."""
    cmd = [sys.executable, "-m", "bnablate", "sweep", *sweep, threads, f"out_dir={out}"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".log"), "w") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})


def _timed(procs: List[subprocess.Popen], outs: List[Path]) -> List[float]:
    """Wall seconds of each process from now (they were just started) to its own end, each watched on its own (not
    one after another: the second's end would read as the first's when it ended sooner); raises if one failed."""
    t0, ends = time.perf_counter(), [None] * len(procs)
    while None in ends:
        for i, p in enumerate(procs):
            if ends[i] is None and p.poll() is not None:
                ends[i] = time.perf_counter() - t0
        time.sleep(0.02)
    for p, out in zip(procs, outs):
        if p.returncode != 0:
            log = out.with_name(out.name + ".log").read_text()
            raise RuntimeError(f"a benchmark sweep failed (exit {p.returncode}):\n{log[-2000:]}")
    return ends


def _scenario(name: str, root: Path, threads: str, sweep: Sequence[str]) -> List[float]:
    outs = [root / f"two-{i}" for i in range(2)] if name == "two at once" else [root / name.replace(" ", "-")]
    loop = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if name == "beside a busy loop" else None
    try:
        if loop is not None:
            time.sleep(0.5)  # the loop is spinning before the sweep starts, as a running job would be
        return _timed([_start(out, threads, sweep) for out in outs], outs)
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()


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
