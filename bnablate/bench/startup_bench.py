"""`bnablate bench --startup`: how long a person waits at the keyboard — `bnablate --help`, `bnablate run --help`, a
shell-completion keystroke (`bnablate run variant=bn_p<TAB>`) and `bnablate list` — each in a fresh process, so the
interpreter's start and every import count, as they do for a user; medians over repetitions. Beside the wall time,
the CPU seconds the process used (user + system): on a shared machine, other processes stretch the wall time of a
command but hardly its CPU time, which is what it would take on an idle core."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

# What the installed `bnablate` script runs (click then names the program `bnablate`, so completion reads
# _BNABLATE_COMPLETE), without needing the script beside this interpreter.
LAUNCH = "import sys; sys.argv[0] = 'bnablate'; from bnablate.launch import main; main()"

# Bash splits words at `=` (COMP_WORDBREAKS): `bnablate run variant=bn_p<TAB>` reaches Typer's completer as these words
# (the same variables Typer's bash completion script sets).
TAB = {"_BNABLATE_COMPLETE": "complete_bash", "COMP_WORDS": "bnablate run variant = bn_p", "COMP_CWORD": "4"}

# name → (command-line arguments, environment added)
KEYSTROKES: Dict[str, Tuple[Tuple[str, ...], Dict[str, str]]] = {
    "bnablate --help": (("--help",), {}),
    "bnablate run --help": (("run", "--help"), {}),
    "bnablate run variant=bn_p<TAB>": ((), TAB),
    "bnablate list": (("list",), {}),
}


def keystroke_env(extra: Dict[str, str]) -> Dict[str, str]:
    """The environment of one keystroke's process: this one's, with the bnablate being measured first on the path
    (a source checkout times itself, not an installed copy) and a wide terminal (no folding cost differences)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in [root, os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "200", **extra}


def run_keystroke(name: str, code: str = LAUNCH) -> subprocess.CompletedProcess:
    """Run one keystroke's command in a fresh interpreter (`code` starts the CLI; a test may wrap it)."""
    args, extra = KEYSTROKES[name]
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=keystroke_env(extra))


def _children_cpu() -> float:
    try:
        import resource
    except ImportError:  # Windows has no rusage: CPU time is not measured there
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for child so far
    return usage.ru_utime + usage.ru_stime


def startup_bench(reps: int = 5, names: Sequence[str] = tuple(KEYSTROKES)) -> List[Dict]:
    """Wall and CPU seconds of each keystroke, `reps` times, the keystrokes interleaved within each repetition so that
    a busy minute of a shared machine slows all of them alike. A command that fails is an error, not a fast time."""
    rows = []
    for rep in range(reps):
        for name in names:
            t0, cpu0 = time.perf_counter(), _children_cpu()
            done = run_keystroke(name)
            seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            if done.returncode != 0 or not done.stdout.strip():
                raise RuntimeError(f"`{name}` failed (exit {done.returncode}):\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
            rows.append({"keystroke": name, "rep": rep, "seconds": seconds, "cpu_seconds": cpu})
    return rows


def summarize_startup(rows: List[Dict]) -> List[Dict]:
    """Per keystroke: the median, min and max wall seconds and the median CPU seconds over the repetitions."""
    out = []
    for name in dict.fromkeys(r["keystroke"] for r in rows):
        mine = [r for r in rows if r["keystroke"] == name]
        secs = [r["seconds"] for r in mine]
        out.append({"keystroke": name, "median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs),
                    "median_cpu_s": statistics.median(r["cpu_seconds"] for r in mine), "reps": len(mine)})
    return out
