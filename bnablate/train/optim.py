"""Optimizer and LR-schedule factories from the `optim` config group."""

from __future__ import annotations

import torch

from ..registry import Registry, check_choice

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULES = ("none", "cosine", "step")
BATCH_SCALINGS = ("none", "linear", "sqrt")


def _kernels(cfg) -> dict:
    """foreach (default: multi-tensor ops) or fused (one kernel per step; ~8 % faster LeNet steps on a 2-core CPU,
    docs/benchmarks.md, but not bitwise equal to foreach — ~3e-8 apart after 200 steps — so optim.fused is part of
    the run key)."""
    return {"fused": True} if cfg.fused else {"foreach": True}


@OPTIMIZERS.register("sgd", "SGD with momentum (optim.momentum) and optional Nesterov")
def _sgd(params, cfg, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=bool(cfg.nesterov),
                           weight_decay=cfg.weight_decay, **_kernels(cfg))


@OPTIMIZERS.register("adam", "Adam (weight_decay as L2, like torch.optim.Adam)")
def _adam(params, cfg, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay, **_kernels(cfg))


def validate_optim(cfg) -> None:
    OPTIMIZERS.get(cfg.name)
    if not float(cfg.lr) > 0:
        raise ValueError(f"optim.lr must be > 0, got {cfg.lr}.")
    if float(cfg.weight_decay) < 0:
        raise ValueError(f"optim.weight_decay must be ≥ 0, got {cfg.weight_decay}.")
    if cfg.name == "sgd" and cfg.nesterov and not float(cfg.momentum) > 0:
        raise ValueError("optim.nesterov=true needs optim.momentum > 0.")
    check_choice("optim.schedule", cfg.schedule, SCHEDULES)
    check_choice("optim.batch_scaling", cfg.batch_scaling, BATCH_SCALINGS)
    if int(cfg.ref_batch_size) < 1:
        raise ValueError(f"optim.ref_batch_size must be ≥ 1, got {cfg.ref_batch_size}.")


def effective_lr(cfg, batch_size: int) -> float:
    """optim.lr after batch-size scaling (optim.batch_scaling relative to optim.ref_batch_size)."""
    ratio = int(batch_size) / int(cfg.ref_batch_size)
    return float(cfg.lr) * {"none": 1.0, "linear": ratio, "sqrt": ratio ** 0.5}[cfg.batch_scaling]


def build_optimizer(params, cfg, batch_size: int) -> torch.optim.Optimizer:
    """The optimizer named by cfg (the `optim` group) over `params`, at the batch-scaled learning rate."""
    return OPTIMIZERS.get(cfg.name)(params, cfg, effective_lr(cfg, batch_size))


def build_scheduler(opt: torch.optim.Optimizer, cfg, epochs: int):
    """A per-epoch LR schedule, or None."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=int(cfg.step_size), gamma=float(cfg.gamma))
    return None
