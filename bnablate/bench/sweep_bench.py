"""`bnablate bench --sweep`: whole runs of the placement sweep, bnablate vs the tutorial loop: on a sample of its runs
(scaled to its variants × --seeds), or `--whole`: all those runs (packed where the sweep packs) against ONE
tutorial-style run.

A run here is what a sweep does per grid point: load the data, build the model, train every epoch and evaluate on
held-out data after each epoch. The tutorial side trains on torchvision's full training set through a DataLoader
(2 workers, per-sample ToTensor) and evaluates on the test set each epoch; bnablate's side is `run_experiment`
(training split without validation images, evaluation on validation and test). Throughput is training samples per
wall second of the whole run, so the two sides' different split sizes cancel out."""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..config import compose_config
from ..data import dataset_spec
from ..models import build_model
from ..train import resolve_device, run_experiment
from .cases import placement_variants
from .tutorial import tutorial_dataset


def tutorial_run(cfg, device: torch.device) -> Dict[str, float]:
    """One whole tutorial-style run: every epoch over the DataLoader, then a test-set evaluation."""
    spec = dataset_spec(cfg.dataset.name)
    t0 = time.perf_counter()
    train, test = tutorial_dataset(cfg.dataset), tutorial_dataset(cfg.dataset, train=False)
    model = build_model(cfg.model, cfg.variant, spec.input_shape, spec.num_classes, seed=int(cfg.seed)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.optim.lr))
    loader = DataLoader(train, batch_size=int(cfg.train.batch_size), shuffle=True, num_workers=2)
    test_loader = DataLoader(test, batch_size=1000, num_workers=2)
    samples, correct = 0, 0
    for _ in range(int(cfg.train.epochs)):
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            samples += len(y)
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x.to(device)).argmax(1) == y.to(device)).sum()) for x, y in test_loader)
    return {"seconds": time.perf_counter() - t0, "train_samples": samples, "test_acc": correct / len(test)}


def _config(model: str, dataset: str, variant: str, seed: int, epochs: int, batch_size: int, device: str,
            overrides: Sequence[str]):
    return compose_config([f"model={model}", f"dataset={dataset}", f"variant={variant}", f"seed={seed}",
                           f"train.epochs={epochs}", f"train.batch_size={batch_size}", "optim.lr=0.001",
                           f"device={device}", *overrides])


def sweep_bench(variants: Sequence[str] = ("no_bn", "bn_pre_act", "bn_post_act", "ln_pre_act"), epochs: int = 5,
                batch_size: int = 128, device: str = "auto", model: str = "lenet", dataset: str = "fashion_mnist",
                overrides: Sequence[str] = ()) -> List[Dict]:
    """Time whole runs (seed 0) of the given variants both ways, alternating which side goes first."""
    dev = resolve_device(device)
    rows = []
    for i, variant in enumerate(variants):
        cfg = _config(model, dataset, variant, 0, epochs, batch_size, device, overrides)

        def ours():
            t0 = time.perf_counter()
            res = run_experiment(cfg)
            return {"seconds": time.perf_counter() - t0, "train_samples": res["n_train"] * epochs,
                    "test_acc": res["metrics"][-1]["test_acc"]}

        sides = [("tutorial", lambda: tutorial_run(cfg, dev)), ("bnablate", ours)]
        for impl, fn in (sides if i % 2 == 0 else sides[::-1]):
            r = fn()
            rows.append({"variant": variant, "impl": impl, **r, "samples_per_s": r["train_samples"] / r["seconds"]})
    return rows


def whole_sweep_bench(model: str = "cnn", dataset: str = "cifar10", epochs: int = 10, batch_size: int = 128,
                      seeds: int = 5, device: str = "auto", variants: Optional[Sequence[str]] = None,
                      overrides: Sequence[str] = ()) -> List[Dict]:
    """ONE tutorial-style run (bn_pre_act, seed 0) against the WHOLE sweep (variants × seeds; variants default to the
    placement sweep's) through bnablate, packed where the sweep would pack (pack=auto: on CUDA), each timed end to
    end. Rows: the tutorial run, then one row per pack or unpacked run of the sweep."""
    from ..pack import plan_packs
    from ..train import run_packed

    dev = resolve_device(device)
    first = _config(model, dataset, "bn_pre_act", 0, epochs, batch_size, device, overrides)
    tut = tutorial_run(first, dev)
    rows = [{"impl": "tutorial", "variant": "bn_pre_act", "runs": 1, **tut,
             "samples_per_s": tut["train_samples"] / tut["seconds"]}]
    for variant in placement_variants() if variants is None else variants:
        cfgs = [_config(model, dataset, variant, s, epochs, batch_size, device, overrides) for s in range(seeds)]
        plan = plan_packs(cfgs, [False] * len(cfgs))  # as the sweep would pack them
        for group in ([cfgs[i] for i in g.indices] for g in plan.packs + plan.lone):
            t0 = time.perf_counter()
            results = run_packed(group) if len(group) > 1 else [run_experiment(group[0])]
            seconds = time.perf_counter() - t0
            samples = sum(r["n_train"] * len(r["metrics"]) for r in results)
            rows.append({"impl": "bnablate", "variant": variant, "runs": len(group), "seconds": seconds,
                         "train_samples": samples, "test_acc": sum(r["metrics"][-1]["test_acc"] for r in results)
                         / len(results), "samples_per_s": samples / seconds})
    return rows
