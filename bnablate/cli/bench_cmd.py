"""`bnablate bench`: samples/s of bnablate's trainer vs the tutorial-style loop, as ratios measured in one run."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..bench.cases import CASES, placement_variants
from .common import console, fail

N_VARIANTS = len(placement_variants())  # conf/sweep/placement.yaml's variants: the help and the scaling follow it


def bench_cmd(
    overrides: Annotated[Optional[List[str]], typer.Argument(
        help="Config overrides for bnablate's trainer (the tutorial loop keeps its plain Adam), e.g. "
             "optim.fused=true.")] = None,
    cases: Annotated[Optional[str], typer.Option(help=f"Comma-separated cases (default all): "
                                                      f"{', '.join(c.name for c in CASES)}.")] = None,
    reps: Annotated[int, typer.Option(help="Repetitions per case (each times both implementations).")] = 3,
    samples: Annotated[int, typer.Option(help="Training samples per timed measurement.")] = 12_800,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up steps before each measurement.")] = 10,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    out: Annotated[Path, typer.Option(help="Folder for bench.csv (every measurement) and summary.csv.")] = Path("runs/bench"),
    inference: Annotated[bool, typer.Option("--inference", help="Instead: eval-time cost of BN per variant, unfused "
                                            "vs folded into the preceding conv/linear (random inputs, no data).")] = False,
    min_seconds: Annotated[float, typer.Option(help="--inference: seconds each timing loops for.")] = 0.25,
    packing: Annotated[bool, typer.Option("--packing", help="Instead: training steps of 5 seeds as one pack vs "
                                          "the same runs one after another, per model (lenet, mlp, cnn) and batch "
                                          "size 2…32 (random inputs, no data): the measurement behind "
                                          "model.cpu_pack_max_batch.")] = False,
    sweep: Annotated[bool, typer.Option("--sweep", help="Instead: whole runs of the placement sweep (b128) on a "
                                        f"sample of its variants, both ways, scaled to its {N_VARIANTS} variants × "
                                        "--seeds runs.")] = False,
    whole: Annotated[bool, typer.Option("--whole", help=f"With --sweep: ALL runs ({N_VARIANTS} variants × --seeds, "
                                        "packed where the sweep packs: on CUDA) against ONE tutorial-style run.")] = False,
    model: Annotated[str, typer.Option(help="--sweep: model (lenet, cnn, mlp).")] = "lenet",
    dataset: Annotated[str, typer.Option(help="--sweep: dataset (fashion_mnist, mnist, cifar10).")] = "fashion_mnist",
    epochs: Annotated[int, typer.Option(help="--sweep: epochs per run.")] = 5,
    seeds: Annotated[int, typer.Option(help="--sweep: seeds per variant (--whole runs them; without it, the "
                                            "scaling counts them).")] = 5,
    processes: Annotated[bool, typer.Option("--processes", help="Instead: the same sweep (no_bn and bn_pre_act × "
                                            "--seeds, --epochs, batch 128) as one process using every core vs "
                                            "Hydra's joblib launcher with --jobs single-thread processes.")] = False,
    jobs: Annotated[int, typer.Option(help="--processes: joblib worker processes (0: one per core).")] = 0,
    synthetic: Annotated[int, typer.Option(help="Benchmark on random images written in torchvision's formats (this "
                                           "many training images per dataset) in a temp folder instead of the real "
                                           "files: throughput only, for machines without the data.")] = 0,
    startup: Annotated[bool, typer.Option("--startup", help="Instead: wall seconds of `bnablate --help`, `bnablate "
                                          "run --help`, a completion keystroke (`bnablate run variant=bn_p<TAB>`) "
                                          "and `bnablate list`, each in a fresh process (median over --reps).")
                       ] = False,
    busy: Annotated[bool, typer.Option("--busy", help="Instead: a digits sweep (no_bn, bn_pre_act × 3 seeds, 5 "
                                       "epochs; KEY=VALUE overrides added) two at once, and beside a one-core busy "
                                       "loop, against the same sweep alone, at threads=0 (auto), every core and one "
                                       "thread, as ratios (no data needed).")] = False,
) -> None:
    """Train the same model, variant (bn_pre_act), batch size and step count with the tutorial loop (torchvision
    dataset + ToTensor + DataLoader, 2 workers) and with bnablate's trainer, interleaved; print samples/s and ratios.
    Needs the real datasets: set BNABLATE_DATA_ROOT (here ../shared/data; CIFAR-10 there needs dataset.verify=false,
    which the bench sets), or --synthetic N for random images in the same formats. --device cuda runs both loops on
    the GPU; --sweep --whole times a whole placement sweep against one tutorial-style run. KEY=VALUE config
    overrides (e.g. optim.fused=true) reach bnablate's trainer; the tutorial loop keeps its plain Adam."""
    from . import bench_modes as modes  # torch and pandas: only once a measurement runs

    if startup:
        return modes.measure_startup(reps, out)
    if busy:
        return modes.measure_busy(reps, out, overrides or [])
    if inference:
        return modes.measure_inference(reps, min_seconds, out)
    if packing:
        return modes.measure_packing(reps, device, out, overrides or [])
    if synthetic < 0:
        fail("--synthetic must be ≥ 0 (0: the real files).")
    with contextlib.ExitStack() as stack:
        overrides = ["dataset.verify=false", *(overrides or [])]
        if synthetic:
            from ..data.fake_files import write_benchmark_files

            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bnablate-bench-")))
            write_benchmark_files(tmp / "data", synthetic)
            overrides += [f"dataset.root={tmp / 'data'}", f"dataset.cache_dir={tmp / 'cache'}"]
            console.print(f"synthetic data: {synthetic} random training images per dataset in {tmp}", highlight=False)
        if processes:
            return modes.measure_processes(model, dataset, epochs, seeds, jobs, reps, out, overrides)
        if sweep:
            return modes.measure_sweep(model, dataset, epochs, seeds, whole, device, out, overrides)
        return modes.measure_cases(cases, reps, samples, warmup, device, out, overrides)
