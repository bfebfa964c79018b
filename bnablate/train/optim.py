"""Optimizer and LR-schedule factories from the `optim` config group.

The warm-up is a small step wrapper rather than torch's LinearLR/ConstantLR + SequentialLR: those schedulers step at
one granularity, and the decay schedules here step once per epoch (their numbers are in earlier records), while a
warm-up counts optimizer steps. The wrapper scales the schedule's lr for the step and puts it back, so the epoch
schedulers never see it."""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..registry import Registry, check_choice

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULES = ("none", "cosine", "step")
WARMUPS = ("linear", "constant")
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


@OPTIMIZERS.register("adamw", "AdamW: Adam with decoupled weight decay (optim.weight_decay; Loshchilov & Hutter 2019)")
def _adamw(params, cfg, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, **_kernels(cfg))


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
    check_choice("optim.warmup_method", cfg.warmup_method, WARMUPS)
    if int(cfg.warmup_steps) < 0:
        raise ValueError(f"optim.warmup_steps must be ≥ 0 (0: no warm-up), got {cfg.warmup_steps}.")
    start = float(cfg.warmup_start)
    if cfg.warmup_method == "constant" and not 0 < start < 1:
        raise ValueError(f"optim.warmup_method=constant trains at optim.warmup_start × lr for the warm-up, so "
                         f"warmup_start must be in (0, 1), got {start}: e.g. optim.warmup_start=0.1 (He et al.).")
    if not 0 <= start < 1:
        raise ValueError(f"optim.warmup_start must be in [0, 1) (the warm-up's first factor of lr), got {start}.")


def check_warmup(cfg, steps_per_epoch: int, epochs: int) -> None:
    """A warm-up must end before the run does: else the run never trains at its configured lr."""
    total = steps_per_epoch * epochs
    if int(cfg.warmup_steps) >= total:
        raise ValueError(f"optim.warmup_steps={cfg.warmup_steps} is not shorter than the run ({epochs} epochs × "
                         f"{steps_per_epoch} steps = {total} steps), so it would never reach optim.lr: use "
                         f"optim.warmup_steps≤{max(total // 10, 1)} (a tenth of the run), or more epochs.")


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


def warmup_factor(cfg, step: int) -> float:
    """The factor of the schedule's lr at optimizer step `step` (1-based): 1 once the warm-up is over."""
    n, start = int(cfg.warmup_steps), float(cfg.warmup_start)
    if step > n:
        return 1.0
    return start if cfg.warmup_method == "constant" else start + (1.0 - start) * step / n


Step = Callable[[torch.optim.Optimizer], None]


class Warmup:
    """An optimizer step (opt.step, or a pack's PerRunLR.step) under the warm-up: step s runs at warmup_factor(s) ×
    the schedule's lr, which is put back afterwards (the per-epoch schedule reads and writes it). A pack's per-run
    rates keep their ratios, since every run's lr is scaled by the same factor."""

    def __init__(self, cfg, inner: Optional[Step] = None) -> None:
        self.cfg, self.inner, self.count = cfg, inner, 0

    def __call__(self, opt: torch.optim.Optimizer) -> None:
        self.count += 1
        factor = warmup_factor(self.cfg, self.count)
        saved = [g["lr"] for g in opt.param_groups]
        for g in opt.param_groups:
            g["lr"] = g["lr"] * factor
        try:
            opt.step() if self.inner is None else self.inner(opt)
        finally:
            for g, lr in zip(opt.param_groups, saved):
                g["lr"] = lr


def step_function(cfg, inner: Optional[Step]) -> Optional[Step]:
    """How the loop steps the optimizer: `inner` (None: plain opt.step()), under a warm-up when optim.warmup_steps > 0.
    Without a warm-up it is `inner` itself, the code path of every earlier record."""
    return Warmup(cfg, inner) if int(cfg.warmup_steps) > 0 else inner
