"""`bnablate bench`: the tutorial loop (or, for one packed case, a vmap pack) and bnablate's trainer on the same
model, batch size and step count, interleaved in one process; samples/s per repetition and the ratio's median, min
and max."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import pandas as pd
import torch

from ..config import compose_config
from ..data import dataset_spec, load_data
from ..models import build_model
from ..atomic import atomic_write_text
from ..seeding import generator
from ..train import resolve_device, train_one_epoch
from ..train.execution import ConfigError, amp_dtype, prepare_inputs, prepare_model
from ..train.loop import timed
from ..train.optim import build_optimizer
from ..pack import PackedModel, packable
from .cases import Case
from .tutorial import tutorial_batches, tutorial_dataset, tutorial_steps


def time_steps(runs, opt, x, y, batch_size: int, gens, warmup: int, steps: int, device: torch.device,
               amp=None, augment=None) -> float:
    """Seconds for `steps` training steps of `runs` (a model or a pack), after `warmup` untimed ones (kernels chosen,
    allocator warm), through the trainer's epoch loop. augment: one generator per run where the data augments."""
    train_one_epoch(runs, opt, x, y, batch_size, gens, augment, max_steps=warmup, amp=amp)
    return timed(lambda: train_one_epoch(runs, opt, x, y, batch_size, gens, augment, max_steps=steps, amp=amp),
                 device)[1]


def case_config(case: Case, overrides: Sequence[str] = ()):
    return compose_config([f"model={case.model}", f"dataset={case.dataset}", f"variant={case.variant}",
                           f"train.batch_size={case.batch_size}", *overrides])


def check_cases(cases: Sequence[Case], overrides: Sequence[str] = ()) -> None:
    """Refuse, before anything is timed, overrides a packed case cannot honour (e.g. train.compile): its figures
    would otherwise be labelled with an option that never ran."""
    for case in cases:
        reason = packable([case_config(case, overrides)]) if case.pack else None
        if reason:
            raise ConfigError(f"case {case.name} trains a pack, and {reason}; leave the packed cases out "
                              f"(--cases) or drop that override.")


def run_case(case: Case, reps: int, samples: int, warmup: int, device: torch.device,
             overrides: Sequence[str] = ()) -> List[Dict]:
    """Measure both implementations `reps` times, alternating which goes first; warm-up steps are not timed."""
    cfg = case_config(case, overrides)
    spec = dataset_spec(case.dataset)
    steps = max(5, samples // case.batch_size)
    data = load_data(cfg.dataset).to(device)
    tut_batches = tutorial_batches(tutorial_dataset(cfg.dataset), case.batch_size)

    def fresh(ours: bool):
        """The model to call, and the optimizer its side uses: the tutorial's plain Adam(lr=1e-3), or the trainer's
        own (the case config's Adam at 1e-3: foreach kernels, or fused with optim.fused=true) with the config's
        execution options (train.compile, train.channels_last), as a run applies them."""
        model = build_model(cfg.model, cfg.variant, spec.input_shape, spec.num_classes, seed=0).to(device)
        if ours:
            return prepare_model(model, cfg.train), build_optimizer(model.parameters(), cfg.optim, case.batch_size)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    train_x = prepare_inputs(data.train_x, cfg.train)  # channels_last when the config asks for it
    amp = amp_dtype(cfg.train)

    def tutorial():
        model, opt = fresh(ours=False)
        tutorial_steps(model, opt, tut_batches, warmup, device)
        return timed(lambda: tutorial_steps(model, opt, tut_batches, steps, device), device)[1]

    def packed(impl: str = "auto"):
        pm = PackedModel([build_model(cfg.model, cfg.variant, spec.input_shape, spec.num_classes, seed=s).to(device)
                          for s in range(case.pack)], impl=impl)
        opt = build_optimizer(pm.parameters(), cfg.optim, case.batch_size)
        gs = [generator(s, "bench") for s in range(case.pack)]
        return time_steps(pm, opt, data.train_x, data.train_y, case.batch_size, gs, warmup, steps, device, amp)

    def bnablate():
        if case.pack:
            return packed()
        model, opt = fresh(ours=True)
        return time_steps(model, opt, train_x, data.train_y, case.batch_size, generator(0, "bench"), warmup, steps,
                          device, amp)

    reference = tutorial if case.reference == "tutorial" else lambda: packed("vmap")
    rows = []
    for rep in range(reps):
        order = [(case.reference, reference), ("bnablate", bnablate)]
        for impl, fn in (order if rep % 2 == 0 else order[::-1]):
            seconds = fn()
            runs = case.pack if (impl != "tutorial" and case.pack) else 1  # packed: samples summed over its runs
            rows.append({**asdict(case), "impl": impl, "rep": rep, "steps": steps, "seconds": seconds,
                         "samples_per_s": runs * steps * case.batch_size / seconds, "device": str(device)})
    return rows


def summarize(rows: List[Dict]) -> pd.DataFrame:
    """Per case: median samples/s of the reference and of bnablate, and the per-repetition ratio's median, min and
    max."""
    df = pd.DataFrame(rows)
    out = []
    for name, g in df.groupby("name", sort=False):
        ref = g[g["impl"] != "bnablate"].set_index("rep")["samples_per_s"]
        ours = g[g["impl"] == "bnablate"].set_index("rep")["samples_per_s"]
        ratios = (ours / ref).dropna().tolist()
        out.append({"case": name, "reference": g["reference"].iloc[0],
                    "reference_samples_per_s": statistics.median(ref),
                    "bnablate_samples_per_s": statistics.median(ours), "ratio_median": statistics.median(ratios),
                    "ratio_min": min(ratios), "ratio_max": max(ratios), "reps": len(ratios)})
    return pd.DataFrame(out)


def run_bench(cases: Sequence[Case], reps: int = 3, samples: int = 12_800, warmup: int = 10, device: str = "auto",
              out: Optional[Path] = None, overrides: Sequence[str] = (),
              on_case: Optional[Callable[[Case], None]] = None) -> pd.DataFrame:
    """Run every case; write bench.csv (one row per case × implementation × repetition) and summary.csv."""
    dev = resolve_device(device)
    check_cases(cases, overrides)
    rows: List[Dict] = []
    for case in cases:
        if on_case:
            on_case(case)
        rows += run_case(case, reps, samples, warmup, dev, overrides)
        if out is not None:  # written as each case ends, so an interrupted bench keeps what it measured
            atomic_write_text(Path(out) / "bench.csv", pd.DataFrame(rows).to_csv(index=False))
    summary = summarize(rows)
    if out is not None:
        atomic_write_text(Path(out) / "summary.csv", summary.to_csv(index=False))
    return summary
