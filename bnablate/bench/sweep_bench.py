"""`bnablate bench --sweep`: whole runs of the placement sweep, bnablate vs the tutorial loop, on a sample of its runs.

A run here is what a sweep does per grid point: load the data, build the model, train every epoch and evaluate on
held-out data after each epoch. The tutorial side trains on torchvision's full training set through a DataLoader
(2 workers, per-sample ToTensor) and evaluates on the test set each epoch; bnablate's side is `run_experiment`
(training split without validation images, evaluation on validation and test). Throughput is training samples per
wall second of the whole run, so the two sides' different split sizes cancel out."""

from __future__ import annotations

import time
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..config import compose_config
from ..data import dataset_spec
from ..models import build_model
from ..train import resolve_device, run_experiment
from .tutorial import tutorial_dataset

SWEEP_VARIANTS = ("no_bn", "bn_pre_act", "bn_post_act", "bn_post_pool", "bn_pre_act_bias", "ln_pre_act",
                  "gn_pre_act", "scratch_bn_pre_act")  # the 8 variants of the 40-run placement sweep (× 5 seeds)


def tutorial_run(cfg, device: torch.device) -> Dict[str, float]:
    """One whole tutorial-style run: every epoch over the DataLoader, then a test-set evaluation."""
    from torchvision import datasets, transforms

    spec = dataset_spec(cfg.dataset.name)
    t0 = time.perf_counter()
    train = tutorial_dataset(cfg.dataset)
    test = datasets.FashionMNIST(str(cfg.dataset.root), train=False, transform=transforms.ToTensor()) \
        if cfg.dataset.name == "fashion_mnist" else None
    model = build_model(cfg.model, cfg.variant, spec.input_shape, spec.num_classes, seed=int(cfg.seed)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.optim.lr))
    loader = DataLoader(train, batch_size=int(cfg.train.batch_size), shuffle=True, num_workers=2)
    test_loader = DataLoader(test, batch_size=1000, num_workers=2) if test is not None else None
    samples = 0
    for _ in range(int(cfg.train.epochs)):
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            samples += len(y)
        if test_loader is not None:
            model.eval()
            with torch.no_grad():
                correct = sum(int((model(x.to(device)).argmax(1) == y.to(device)).sum()) for x, y in test_loader)
    acc = correct / len(test) if test_loader is not None else float("nan")
    return {"seconds": time.perf_counter() - t0, "train_samples": samples, "test_acc": acc}


def sweep_bench(variants: Sequence[str] = ("no_bn", "bn_pre_act", "bn_post_act", "ln_pre_act"), epochs: int = 5,
                batch_size: int = 128, device: str = "auto") -> List[Dict]:
    """Time whole runs (seed 0) of the given variants both ways, alternating which side goes first."""
    dev = resolve_device(device)
    rows = []
    for i, variant in enumerate(variants):
        cfg = compose_config(["model=lenet", "dataset=fashion_mnist", f"variant={variant}", "seed=0",
                              f"train.epochs={epochs}", f"train.batch_size={batch_size}", "optim.lr=0.001"])

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
