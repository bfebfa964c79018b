"""Optimizer and LR-schedule factories from the `optim` config group.

The warm-up is a small step wrapper rather than torch's LinearLR/ConstantLR + SequentialLR: those schedulers step at
one granularity, and the decay schedules here step once per epoch by default (optim.schedule_unit=epoch: their numbers
are in earlier records) or once per optimizer step (optim.schedule_unit=step), while a warm-up counts optimizer steps.
The wrapper scales the schedule's lr for the step and puts it back, so the schedulers never see it."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional

import torch
from torch import nn

from ..registry import Registry, check_choice

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULES = ("none", "cosine", "step", "multistep")
SCHEDULE_UNITS = ("epoch", "step")
WD_EXCLUDES = ("none", "timm")
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
    _validate_recipe(cfg)


def _validate_recipe(cfg) -> None:
    """optim.wd_exclude, schedule_unit and milestones: known values, and none that would change nothing (the same run
    under a second run key)."""
    check_choice("optim.wd_exclude", cfg.wd_exclude, WD_EXCLUDES)
    if cfg.wd_exclude != "none" and float(cfg.weight_decay) == 0:
        raise ValueError(f"optim.wd_exclude={cfg.wd_exclude} exempts some parameters from weight decay, and "
                         f"optim.weight_decay=0 decays none: set a decay (e.g. optim.weight_decay=0.05), or leave "
                         f"optim.wd_exclude=none.")
    check_choice("optim.schedule_unit", cfg.schedule_unit, SCHEDULE_UNITS)
    if cfg.schedule_unit != "epoch" and cfg.schedule == "none":
        raise ValueError(f"optim.schedule_unit={cfg.schedule_unit} says what optim.schedule counts, and "
                         f"optim.schedule=none has nothing to count: choose a schedule (optim.schedule=cosine), or "
                         f"leave optim.schedule_unit=epoch.")
    milestones = None if cfg.milestones is None else [int(m) for m in cfg.milestones]
    if cfg.schedule == "multistep" and not milestones:
        raise ValueError("optim.schedule=multistep multiplies lr by optim.gamma at each of optim.milestones, and none "
                         "are given: e.g. optim.milestones=[32000,48000] optim.schedule_unit=step (He et al. 2016).")
    if milestones is not None and cfg.schedule != "multistep":
        raise ValueError(f"optim.milestones={milestones} belongs to optim.schedule=multistep, and "
                         f"optim.schedule={cfg.schedule} would ignore it: set optim.schedule=multistep, or "
                         f"optim.milestones=null.")
    if milestones and (milestones[0] < 1 or any(b <= a for a, b in zip(milestones, milestones[1:]))):
        raise ValueError(f"optim.milestones={milestones} must be increasing {cfg.schedule_unit}s ≥ 1 (each counts "
                         f"from the run's start): e.g. optim.milestones={sorted(set(m for m in milestones if m >= 1))}.")


def check_warmup(cfg, steps_per_epoch: int, epochs: int) -> None:
    """A warm-up must end before the run does: else the run never trains at its configured lr. Likewise every
    milestone of a multistep schedule: one at or past the run's end would never lower the lr."""
    total = steps_per_epoch * epochs
    if int(cfg.warmup_steps) >= total:
        raise ValueError(f"optim.warmup_steps={cfg.warmup_steps} is not shorter than the run ({epochs} epochs × "
                         f"{steps_per_epoch} steps = {total} steps), so it would never reach optim.lr: use "
                         f"optim.warmup_steps≤{max(total // 10, 1)} (a tenth of the run), or more epochs.")
    if cfg.schedule == "multistep":
        end = epochs if cfg.schedule_unit == "epoch" else total
        late = [int(m) for m in cfg.milestones if int(m) >= end]
        if late:
            raise ValueError(f"optim.milestones {late} are not before the run's end ({end} {cfg.schedule_unit}s: "
                             f"{epochs} epochs × {steps_per_epoch} steps), so they would never lower the lr: give "
                             f"milestones below {end}, or more train.epochs.")


def effective_lr(cfg, batch_size: int) -> float:
    """optim.lr after batch-size scaling (optim.batch_scaling relative to optim.ref_batch_size)."""
    ratio = int(batch_size) / int(cfg.ref_batch_size)
    return float(cfg.lr) * {"none": 1.0, "linear": ratio, "sqrt": ratio ** 0.5}[cfg.batch_scaling]


def build_optimizer(params, cfg, batch_size: int, model: Optional[nn.Module] = None) -> torch.optim.Optimizer:
    """The optimizer named by cfg (the `optim` group) over `params`, at the batch-scaled learning rate; under
    optim.wd_exclude=timm in two groups (decay_groups: `model` names the parameters)."""
    if cfg.wd_exclude != "none":
        if model is None:
            raise ValueError("optim.wd_exclude needs the model to tell its parameters apart")
        params = decay_groups(model, params)
    return OPTIMIZERS.get(cfg.name)(params, cfg, effective_lr(cfg, batch_size))


def no_decay_names(model: nn.Module) -> set:
    """Qualified names of the parameters timm exempts from weight decay: every one with ndim ≤ 1 (norms' γ/β,
    biases, DyT's α) and those a module lists in its `no_weight_decay()` (a ViT's position embedding and class token),
    as timm.optim.param_groups_weight_decay with timm's model.no_weight_decay() (timm/optim/_param_groups.py)."""
    names = {n for n, p in model.named_parameters() if p.ndim <= 1}
    for prefix, module in model.named_modules():
        if hasattr(module, "no_weight_decay"):
            names |= {f"{prefix}.{n}" if prefix else n for n in module.no_weight_decay()}
    return names


def decay_groups(model: nn.Module, params: Iterable[torch.Tensor]) -> List[dict]:
    """`params` (the trainable ones, a subset of model's) as two optimizer groups, timm's order: decayed (the
    optimizer's optim.weight_decay), then exempt (weight_decay 0; no_decay_names)."""
    exempt = {id(p) for n, p in model.named_parameters() if n in no_decay_names(model)}
    params = list(params)
    return [{"params": [p for p in params if id(p) not in exempt]},
            {"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0}]


def build_scheduler(opt: torch.optim.Optimizer, cfg, epochs: int, steps_per_epoch: int = 1):
    """optim.schedule as a torch scheduler counting optim.schedule_unit (epochs, or optimizer steps: then T_max,
    step_size and milestones are in steps, over epochs × steps_per_epoch), or None."""
    length = epochs * (steps_per_epoch if cfg.schedule_unit == "step" else 1)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=length)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=int(cfg.step_size), gamma=float(cfg.gamma))
    if cfg.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(m) for m in cfg.milestones],
                                                    gamma=float(cfg.gamma))
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


class LRSchedule:
    """optim.schedule on `opt`, stepped in optim.schedule_unit. `step` is how the training loop steps the optimizer
    (`inner`, under the warm-up when `warmup`, then the schedule when it counts optimizer steps); `end_epoch()` steps
    the schedule when it counts epochs (the path of every record before optim.schedule_unit)."""

    def __init__(self, opt: torch.optim.Optimizer, cfg, epochs: int, steps_per_epoch: int,
                 inner: Optional[Step] = None, warmup: bool = True) -> None:
        self.sched = build_scheduler(opt, cfg, epochs, steps_per_epoch)
        self.per_step = self.sched is not None and cfg.schedule_unit == "step"
        wrapped = step_function(cfg, inner) if warmup else inner
        self.warmup = wrapped if isinstance(wrapped, Warmup) else None
        self.step: Optional[Step] = self._then_schedule(wrapped) if self.per_step else wrapped

    def state_dict(self) -> Dict[str, Any]:
        """Where the schedule and the warm-up stand (a checkpoint's part: train/resume.py)."""
        return {"sched": None if self.sched is None else self.sched.state_dict(),
                "warmup": None if self.warmup is None else self.warmup.count}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if self.sched is not None:
            self.sched.load_state_dict(state["sched"])
        if self.warmup is not None:
            self.warmup.count = int(state["warmup"])

    def _then_schedule(self, step: Optional[Step]) -> Step:
        def run(opt: torch.optim.Optimizer) -> None:
            opt.step() if step is None else step(opt)
            self.sched.step()
        return run

    def end_epoch(self) -> None:
        if self.sched is not None and not self.per_step:
            self.sched.step()
