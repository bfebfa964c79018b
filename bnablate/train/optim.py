"""Optimizer and LR-schedule factories from the `optim` config group."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULES = ("none", "cosine", "step")


@OPTIMIZERS.register("sgd", "SGD with momentum (optim.momentum) and optional Nesterov")
def _sgd(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=bool(cfg.nesterov),
                           weight_decay=cfg.weight_decay, foreach=True)


@OPTIMIZERS.register("adam", "Adam (weight_decay as L2, like torch.optim.Adam)")
def _adam(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)


def validate_optim(cfg) -> None:
    OPTIMIZERS.get(cfg.name)
    if not float(cfg.lr) > 0:
        raise ValueError(f"optim.lr must be > 0, got {cfg.lr}.")
    if float(cfg.weight_decay) < 0:
        raise ValueError(f"optim.weight_decay must be ≥ 0, got {cfg.weight_decay}.")
    if cfg.name == "sgd" and cfg.nesterov and not float(cfg.momentum) > 0:
        raise ValueError("optim.nesterov=true needs optim.momentum > 0.")
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"Unknown optim.schedule '{cfg.schedule}'. Valid values: {', '.join(SCHEDULES)}.")


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(cfg.name)(model.parameters(), cfg)


def build_scheduler(opt: torch.optim.Optimizer, cfg, epochs: int):
    """A per-epoch LR schedule, or None."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=int(cfg.step_size), gamma=float(cfg.gamma))
    return None
