"""`bnablate bench --packing`: training steps of K seeds as one pack against the same K runs one after another, per
model and batch size — the measurement behind each model's `cpu_pack_max_batch` (conf/model/*.yaml)."""

from __future__ import annotations

import statistics
from typing import Dict, List, Sequence

import torch

from ..config import compose_config
from ..data import dataset_spec
from ..models import build_model
from ..pack import PackedModel
from ..seeding import generator
from ..train.optim import build_optimizer
from .harness import time_steps

PACK_MODELS = (("lenet", "fashion_mnist"), ("mlp", "cifar10"), ("cnn", "cifar10"))
WARMUP_STEPS = 2  # untimed steps before each timing: kernels chosen, allocator warm


def _inputs(dataset: str, n: int, device: torch.device):
    """n random images of the dataset's shape and labels in its class range: timing only needs the shapes."""
    spec = dataset_spec(dataset)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *spec.input_shape, generator=g).to(device)
    return x, torch.randint(0, spec.num_classes, (n,), generator=g).to(device), spec


def pack_bench(models: Sequence[tuple] = PACK_MODELS, batch_sizes: Sequence[int] = (2, 4, 8, 16, 32), k: int = 5,
               steps: int = 40, reps: int = 5, device: str = "cpu", variant: str = "bn_pre_act",
               overrides: Sequence[str] = ()) -> List[Dict]:
    """One row per (model, batch size, repetition): seconds for `steps` SGD steps of K seeds packed (pack=auto's
    implementation) and of the same K runs trained one after another, alternating which goes first; the ratio
    sequential / packed is how much faster a pack trains each run (> 1: packing pays)."""
    dev = torch.device(device)
    rows = []
    for model, dataset in models:
        for batch in batch_sizes:
            cfg = compose_config([f"model={model}", f"dataset={dataset}", f"variant={variant}", "optim=sgd",
                                  f"train.batch_size={batch}", *overrides])
            x, y, spec = _inputs(dataset, steps * batch, dev)

            def fresh(seed: int):
                return build_model(cfg.model, cfg.variant, spec.input_shape, spec.num_classes, seed=seed,
                                   bn=cfg.bn).to(dev)

            def packed() -> float:
                pm = PackedModel([fresh(s) for s in range(k)], impl=str(cfg.pack_impl))
                opt = build_optimizer(pm.parameters(), cfg.optim, batch)
                gens = [generator(s, "bench") for s in range(k)]
                return time_steps(pm, opt, x, y, batch, gens, WARMUP_STEPS, steps, dev)

            def alone(seed: int) -> float:
                m = fresh(seed)
                opt = build_optimizer(m.parameters(), cfg.optim, batch)
                return time_steps(m, opt, x, y, batch, generator(seed, "bench"), WARMUP_STEPS, steps, dev)

            def sequential() -> float:
                return sum(alone(s) for s in range(k))

            for rep in range(reps):
                order = [("packed", packed), ("sequential", sequential)]
                times = dict((name, fn()) for name, fn in (order if rep % 2 == 0 else order[::-1]))
                rows.append({"model": model, "dataset": dataset, "variant": variant, "batch_size": batch, "k": k,
                             "steps": steps, "rep": rep, "packed_s": times["packed"],
                             "sequential_s": times["sequential"], "ratio": times["sequential"] / times["packed"],
                             "device": str(dev)})
    return rows


def summarize_packing(rows: List[Dict]) -> List[Dict]:
    """Median ratio per (model, batch size), with its min and max over repetitions."""
    out: Dict[tuple, List[float]] = {}
    for r in rows:
        out.setdefault((r["model"], r["batch_size"]), []).append(r["ratio"])
    return [{"model": m, "batch_size": b, "ratio_median": statistics.median(v), "ratio_min": min(v),
             "ratio_max": max(v)} for (m, b), v in out.items()]


__all__ = ["PACK_MODELS", "pack_bench", "summarize_packing"]
