"""`bnablate bench --processes`: the same sweep through one process using every core vs Hydra's joblib launcher with
one single-thread process per core — which spends a CPU's cores better on many small runs.

Small models leave most of a multi-threaded step in per-op dispatch and in kernels too small to split across cores,
so N single-thread processes, each training its own run, can beat one process whose N threads share every step. Both
sides are real `bnablate sweep` commands (what a user would type), each into its own temporary folder, timed end to
end: interpreter and torch start-up, Hydra, data loading, training, evaluation, records and the report."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

import pandas as pd

MODES = ("one process", "joblib")


def sweep_command(mode: str, out: Path, model: str, dataset: str, variants: Sequence[str], seeds: int, epochs: int,
                  jobs: int, overrides: Sequence[str]) -> List[str]:
    """The `bnablate sweep` command line of one side. One process: torch's default threads (every core). joblib:
    `jobs` worker processes with threads=0, i.e. cores // jobs torch threads each (bnablate.sweeps.threads_per_job)."""
    cmd = [sys.executable, "-m", "bnablate", "sweep", f"model={model}", f"dataset={dataset}",
           f"variant={','.join(variants)}", f"seed=range({seeds})", f"train.epochs={epochs}", "train.batch_size=128",
           "pack=false", "threads=0", f"out_dir={out}", *overrides]
    if mode == "joblib":
        cmd += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    return cmd


def process_bench(model: str = "lenet", dataset: str = "fashion_mnist", variants: Sequence[str] = ("bn_pre_act",
                  "no_bn"), seeds: int = 2, epochs: int = 1, jobs: int = 0, reps: int = 1,
                  overrides: Sequence[str] = ()) -> List[Dict]:
    """Time the sweep both ways `reps` times, alternating which side goes first. jobs=0: one per core. Each row: the
    side, the repetition, wall seconds, finished runs (both sides train the same runs, so the time ratio is the
    throughput ratio) and their mean final test accuracy (equal up to thread-count rounding)."""
    jobs = jobs or os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="bnablate-procbench-") as tmp:
        for rep in range(reps):
            for mode in (MODES if rep % 2 == 0 else MODES[::-1]):
                out = Path(tmp) / f"{mode.replace(' ', '_')}-{rep}"
                cmd = sweep_command(mode, out, model, dataset, variants, seeds, epochs, jobs, overrides)
                t0 = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
                seconds = time.perf_counter() - t0
                if done.returncode != 0:
                    raise RuntimeError(f"the {mode} sweep failed (exit {done.returncode}):\n{done.stdout[-1500:]}"
                                       f"{done.stderr[-1500:]}")
                runs = pd.read_csv(out / "runs.csv")
                ok = runs[runs["status"] == "ok"]
                rows.append({"mode": mode, "rep": rep, "processes": jobs if mode == "joblib" else 1,
                             "seconds": seconds, "runs": len(ok), "runs_per_min": 60 * len(ok) / seconds,
                             "test_acc": float(ok["final_test_acc"].mean())})
    return rows
