"""The measurements of `bnablate bench`, each printed as a table and written as CSV; bench_cmd.py holds the command's
options and imports this module only when a measurement runs (it needs torch and pandas, its help does not)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import List, Optional

import pandas as pd
import torch
from rich.table import Table

from ..atomic import atomic_write_text
from ..bench.busy_bench import DEFAULT_SWEEP, busy_bench, summarize_busy
from ..bench.cases import CASES
from ..bench.harness import run_bench
from ..bench.inference import inference_bench
from ..bench.process_bench import process_bench
from ..bench.startup_bench import startup_bench, summarize_startup
from ..bench.sweep_bench import sweep_bench, whole_sweep_bench
from ..data import DataError
from ..results.records import provenance
from ..train import ConfigError, resolve_device
from .bench_cmd import N_VARIANTS
from .common import console, fail


def measure_cases(cases: Optional[str], reps: int, samples: int, warmup: int, device: str, out: Path, overrides) -> None:
    by_name = {c.name: c for c in CASES}
    chosen = [c.strip() for c in cases.split(",")] if cases else list(by_name)
    unknown = [c for c in chosen if c not in by_name]
    if unknown:
        fail(f"Unknown bench case(s) {', '.join(unknown)}. Choose from: {', '.join(by_name)}.")
    if reps < 1 or samples < 1 or warmup < 0:
        fail("--reps and --samples must be ≥ 1 and --warmup ≥ 0.")
    info = provenance(str(torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")))
    console.print(f"bnablate bench, {date.today()}: {info.get('gpu') or info['cpu']}, {info['torch_threads']} torch "
                  f"threads, torch {info['torch']}", highlight=False)
    try:
        summary = run_bench([by_name[c] for c in chosen], reps=reps, samples=samples, warmup=warmup, device=device,
                            out=out, overrides=overrides,
                            on_case=lambda c: console.print(f"measuring {c.name} …", highlight=False))
    except (ConfigError, DataError) as e:
        fail(str(e))
    t = Table(title="training samples/s (median over repetitions) and bnablate / reference ratio (reference: the "
              "tutorial loop, or a vmap pack)", title_justify="left")
    for col in ("case", "reference", "bnablate", "ratio median", "min", "max"):
        t.add_column(col, justify="left" if col == "case" else "right")
    for _, r in summary.iterrows():
        t.add_row(r["case"], f"{r['reference_samples_per_s']:,.0f}", f"{r['bnablate_samples_per_s']:,.0f}",
                  f"{r['ratio_median']:.2f}×", f"{r['ratio_min']:.2f}×", f"{r['ratio_max']:.2f}×")
    console.print(t)
    console.print(f"measurements: {out}/bench.csv, summary: {out}/summary.csv", highlight=False)


def measure_packing(reps: int, device: str, out: Path, overrides: List[str]) -> None:
    from ..bench.pack_bench import pack_bench, summarize_packing

    if reps < 1:
        fail("--reps must be ≥ 1.")
    dev = str(resolve_device(device))
    info = provenance(dev)
    console.print(f"bnablate bench --packing, {date.today()}: {info.get('gpu') or info['cpu']}, "
                  f"{info['torch_threads']} torch threads, torch {info['torch']}", highlight=False)
    try:
        rows = pack_bench(reps=reps, device=dev, overrides=overrides)
    except ConfigError as e:
        fail(str(e))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "packing.csv", pd.DataFrame(rows).to_csv(index=False))
    summary = pd.DataFrame(summarize_packing(rows))
    t = Table(title="packed vs one after another: training time ratio per run, median \\[min, max] over "
              "repetitions (> 1: the pack is faster)", title_justify="left")
    batches = sorted(summary["batch_size"].unique())
    for col in ["model", *map(str, batches)]:
        t.add_column(col, justify="left" if col == "model" else "right")
    for model, g in summary.groupby("model", sort=False):
        cells = {int(r["batch_size"]): f"{r['ratio_median']:.2f}× [{r['ratio_min']:.2f}, {r['ratio_max']:.2f}]"
                 for _, r in g.iterrows()}
        t.add_row(model, *[cells.get(int(b), "") for b in batches])
    console.print(t)
    console.print(f"measurements: {out}/packing.csv. model.cpu_pack_max_batch (conf/model/*.yaml) is the largest "
                  "batch whose ratio is at least 1.2× (evaluation does not shrink with packing: docs/benchmarks.md)",
                  highlight=False)


def measure_inference(reps: int, min_seconds: float, out: Path) -> None:
    if reps < 1 or min_seconds <= 0:
        fail("--reps must be ≥ 1 and --min-seconds > 0.")
    info = provenance("cpu")
    console.print(f"bnablate bench --inference, {date.today()}: {info['cpu']}, {info['torch_threads']} torch threads, "
                  f"torch {info['torch']}", highlight=False)
    rows = inference_bench(reps=reps, min_seconds=min_seconds)
    t = Table(title="eval samples/s; BN overhead = time per sample vs the same model without BN (median of paired "
                    "repetitions)", title_justify="left")
    for col in ("model", "variant", "batch", "samples/s unfused", "samples/s folded", "BN overhead unfused",
                "BN overhead folded", "BNs folded/left", "max |Δ|"):
        t.add_column(col, justify="left" if col in ("model", "variant") else "right")
    for r in rows:
        t.add_row(r["model"], r["variant"], str(r["batch_size"]), f"{r['unfused_samples_per_s']:,.0f}",
                  f"{r['folded_samples_per_s']:,.0f}", f"{r['unfused_overhead_pct']:+.1f}%",
                  f"{r['folded_overhead_pct']:+.1f}%", f"{r['bn_folded']}/{r['bn_left']}", f"{r['max_abs_diff']:.1e}")
    console.print(t)
    atomic_write_text(out / "inference.csv", pd.DataFrame(rows).to_csv(index=False))
    console.print(f"measurements: {out}/inference.csv. BN after the activation or pooling (post_act, post_pool) is "
                  "not folded: it is not an affine map of the conv/linear output.", highlight=False)


def measure_sweep(model: str, dataset: str, epochs: int, seeds: int, whole: bool, device: str, out: Path,
           overrides) -> None:
    if epochs < 1 or seeds < 1:
        fail("--epochs and --seeds must be ≥ 1.")
    try:
        info = provenance(str(resolve_device(device)))
    except ConfigError as e:
        fail(str(e))
    console.print(f"bnablate bench --sweep, {date.today()}: {info.get('gpu') or info['cpu']}, torch {info['torch']}",
                  highlight=False)
    try:
        if whole:
            return _whole(whole_sweep_bench(model, dataset, epochs, seeds=seeds, device=device, overrides=overrides),
                          model, dataset, epochs, out)
        rows = sweep_bench(epochs=epochs, device=device, model=model, dataset=dataset, overrides=overrides)
        runs = N_VARIANTS * seeds
    except (ConfigError, DataError) as e:
        fail(str(e))
    df = pd.DataFrame(rows)
    atomic_write_text(out / "sweep.csv", df.to_csv(index=False))
    t = Table(title=f"whole runs ({model}, {dataset}, batch 128, {epochs} epochs): seconds and training samples/s",
              title_justify="left")
    for col in ("variant", "tutorial s", "bnablate s", "tutorial samples/s", "bnablate samples/s", "ratio"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for variant, g in df.groupby("variant", sort=False):
        tut, ours = g[g["impl"] == "tutorial"].iloc[0], g[g["impl"] == "bnablate"].iloc[0]
        t.add_row(variant, f"{tut['seconds']:.1f}", f"{ours['seconds']:.1f}", f"{tut['samples_per_s']:,.0f}",
                  f"{ours['samples_per_s']:,.0f}", f"{ours['samples_per_s'] / tut['samples_per_s']:.2f}×")
    console.print(t)
    per_run = df.groupby("impl")["seconds"].mean()
    rate = df.groupby("impl")["samples_per_s"].median()
    console.print(f"scaled to the {runs}-run sweep ({N_VARIANTS} variants × {seeds} seeds; mean run time × {runs}): "
                  f"tutorial {per_run['tutorial'] * runs / 60:.1f} min, bnablate {per_run['bnablate'] * runs / 60:.1f} "
                  f"min; throughput ratio (medians) "
                  f"{rate['bnablate'] / rate['tutorial']:.2f}×. Measurements: {out}/sweep.csv", highlight=False)


def measure_processes(model: str, dataset: str, epochs: int, seeds: int, jobs: int, reps: int, out: Path, overrides) -> None:
    if epochs < 1 or seeds < 1 or jobs < 0 or reps < 1:
        fail("--epochs, --seeds and --reps must be ≥ 1 and --jobs ≥ 0 (0: one per core).")
    info = provenance("cpu")
    console.print(f"bnablate bench --processes, {date.today()}: {info['cpu']}, torch {info['torch']}", highlight=False)
    try:
        rows = process_bench(model, dataset, seeds=seeds, epochs=epochs, jobs=jobs, reps=reps, overrides=overrides)
    except RuntimeError as e:
        fail(str(e))
    df = pd.DataFrame(rows)
    atomic_write_text(out / "processes.csv", df.to_csv(index=False))
    t = Table(title=f"one sweep ({model}, {dataset}, no_bn + bn_pre_act × {seeds} seeds, {epochs} epoch(s), batch "
                    f"128), wall time of the whole command", title_justify="left")
    for col in ("mode", "processes", "rep", "runs", "wall s", "runs/min", "mean test acc"):
        t.add_column(col, justify="left" if col == "mode" else "right")
    for _, r in df.iterrows():
        t.add_row(r["mode"], str(r["processes"]), str(r["rep"]), str(r["runs"]), f"{r['seconds']:.1f}",
                  f"{r['runs_per_min']:.2f}", f"{100 * r['test_acc']:.2f}")
    console.print(t)
    med = df.groupby("mode")["seconds"].median()
    console.print(f"joblib / one process throughput: {med['one process'] / med['joblib']:.2f}× (median wall times "
                  f"{med['one process']:.1f} s vs {med['joblib']:.1f} s). Measurements: {out}/processes.csv",
                  highlight=False)


def _whole(rows, model: str, dataset: str, epochs: int, out: Path) -> None:
    df = pd.DataFrame(rows)
    atomic_write_text(out / "sweep_whole.csv", df.to_csv(index=False))
    tut, ours = df[df["impl"] == "tutorial"].iloc[0], df[df["impl"] == "bnablate"]
    t = Table(title=f"the whole sweep ({model}, {dataset}, batch 128, {epochs} epochs) vs ONE tutorial-style run",
              title_justify="left")
    for col in ("", "runs", "wall s", "training samples/s"):
        t.add_column(col, justify="left" if not col else "right")
    t.add_row("tutorial loop, bn_pre_act", "1", f"{tut['seconds']:.1f}", f"{tut['samples_per_s']:,.0f}")
    for _, r in ours.iterrows():
        t.add_row(f"bnablate {r['variant']}" + (" (packed)" if r["runs"] > 1 else ""), str(r["runs"]),
                  f"{r['seconds']:.1f}", f"{r['samples_per_s']:,.0f}")
    total_s, total_runs = ours["seconds"].sum(), int(ours["runs"].sum())
    rate = ours["train_samples"].sum() / total_s
    t.add_row("bnablate, all runs", str(total_runs), f"{total_s:.1f}", f"{rate:,.0f}")
    console.print(t)
    console.print(f"all {total_runs} runs took {total_s / tut['seconds']:.2f}× the wall time of one tutorial run "
                  f"(summed throughput {rate / tut['samples_per_s']:.1f}× the tutorial loop's). Measurements: "
                  f"{out}/sweep_whole.csv", highlight=False)


def measure_startup(reps: int, out: Path) -> None:
    if reps < 1:
        fail("--reps must be ≥ 1.")
    info = provenance("cpu")
    console.print(f"bnablate bench --startup, {date.today()}: {info['cpu']}, Python {info['python']}",
                  highlight=False)
    try:
        rows = startup_bench(reps=reps)
    except RuntimeError as e:
        fail(str(e))
    atomic_write_text(out / "startup.csv", pd.DataFrame(rows).to_csv(index=False))
    t = Table(title="seconds of a keystroke's command in a fresh process (interpreter start and imports included), "
                    "over repetitions: wall time, and the CPU time it used", title_justify="left")
    for col in ("command", "wall s median", "min", "max", "CPU s median"):
        t.add_column(col, justify="left" if col == "command" else "right")
    for r in summarize_startup(rows):
        t.add_row(r["keystroke"], f"{r['median_s']:.2f}", f"{r['min_s']:.2f}", f"{r['max_s']:.2f}",
                  f"{r['median_cpu_s']:.2f}")
    console.print(t)
    console.print(f"measurements: {out}/startup.csv", highlight=False)


def measure_busy(reps: int, out: Path, overrides) -> None:
    if reps < 1:
        fail("--reps must be ≥ 1.")
    info = provenance("cpu")
    sweep = [*DEFAULT_SWEEP, *overrides]
    console.print(f"bnablate bench --busy, {date.today()}: {info['cpu']}, {info['cpu_count']} cores, torch "
                  f"{info['torch']}; each side: bnablate sweep {' '.join(sweep)}", highlight=False)
    try:
        rows = busy_bench(reps=reps, sweep=sweep)
    except RuntimeError as e:
        fail(str(e))
    atomic_write_text(out / "busy.csv", pd.DataFrame(rows).to_csv(index=False))
    t = Table(title="wall seconds of one sweep command (median over --reps; two at once: over both processes), and "
                    "the ratio to the same threads setting alone", title_justify="left")
    for col in ("threads", "scenario", "wall s", "× alone"):
        t.add_column(col, justify="left" if col in ("threads", "scenario") else "right")
    for r in summarize_busy(rows):
        t.add_row(r["setting"], r["scenario"], f"{r['median_s']:.1f}", f"{r['ratio']:.2f}")
    console.print(t)
    console.print(f"measurements: {out}/busy.csv", highlight=False)
