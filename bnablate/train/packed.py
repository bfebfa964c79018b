"""Packed training: K runs that share an architecture (seeds, and learning rates) in one vmapped forward/backward.

Each run keeps its own paired init, batch order, augmentation stream, BN running statistics (stacked buffers updated in
place under vmap), optimizer state, learning rate and metrics. One Adam/SGD over the stacked (K, ...) parameters equals
K separate optimizers, because their updates are elementwise and each run's loss term only reaches its own slice."""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from ..config import KEYS
from ..data import augment_batch, load_data
from ..keys import without
from ..models import build_model, count_params
from ..seeding import generator
from .execution import ConfigError, amp_dtype, configure_device, execution_info
from .grouped import GroupedForward, unsupported
from .loop import epoch_batches, timed
from .optim import build_optimizer, build_scheduler, effective_lr
from .runner import check_data, epoch_row, validate_config


def pack_key(cfg: DictConfig) -> str:
    """Runs with equal keys can share a pack: everything but the seed, the learning rate and labels (the keys declared
    pack_varies or Role.LABEL in bnablate/config.py) is the same — data, output folder and execution options too."""
    return repr(without(OmegaConf.to_container(cfg, resolve=True), KEYS.pack_ignores))


def packable(cfgs: Sequence[DictConfig]) -> Optional[str]:
    """None if these configs can train as one pack, else the reason they cannot."""
    if len({pack_key(c) for c in cfgs}) > 1:
        return "packed runs must differ only in their seed and optim.lr"
    cfg = cfgs[0]
    if cfg.variant.dropout != "none":
        return "dropout masks are drawn per run from separate streams, which vmap cannot reproduce"
    if cfg.train.compile or cfg.train.channels_last:
        return "train.compile and train.channels_last apply to unpacked runs only"
    if cfg.train.precision != "fp32":  # torch 2.x: vmap's batch_norm rule rejects bf16 inputs with FP32 weights
        return "bf16 autocast is not supported under vmap's batch-norm rule; these runs train unpacked"
    if cfg.bn.eval_stats != "running":
        return f"bn.eval_stats={cfg.bn.eval_stats} evaluates in train mode (batch statistics or PreciseBN), which " \
               "the packed evaluation does not implement"
    if cfg.bn.momentum is None:
        return "bn.momentum=null (cumulative average) reads each run's batch count as a Python number, which vmap " \
               "cannot do"
    if cfg.finetune.source is not None:
        return "fine-tuning starts each run from its own pretraining checkpoint and BN mode, which packs do not load"
    return None


PACK_IMPLS = ("auto", "grouped", "vmap")


def check_pack_impl(impl: str) -> None:
    """Reject an unknown pack_impl before anything trains (sweeps call this for every job)."""
    if impl not in PACK_IMPLS:
        raise ConfigError(f"pack_impl must be one of {', '.join(PACK_IMPLS)}, got '{impl}'.")


class PackedModel:
    """K copies of one architecture as stacked (K, ...) parameters/buffers, called on inputs (K, B, ...). impl:
    "grouped" (grouped convs / batched matmuls / wide norms, `grouped.py`), "vmap" (torch.func over the lone model),
    or "auto" (grouped where every layer has a grouped form, else vmap). Both compute the same K runs."""

    def __init__(self, models: List[nn.Module], impl: str = "auto") -> None:
        self.k = len(models)
        self.params, self.buffers = stack_module_state(models)  # name → (K, ...) leaf tensors
        self.base = copy.deepcopy(models[0]).to("meta")  # structure only; every tensor comes from params/buffers
        check_pack_impl(impl)
        missing = unsupported(self.base)
        if impl == "grouped" and missing:
            raise ConfigError(f"pack_impl=grouped: layer {missing} has no grouped form; use pack_impl=auto or vmap.")
        self.impl = "vmap" if impl == "vmap" or missing else "grouped"
        self._grouped = GroupedForward(self.base, self.params, self.buffers, self.k) if self.impl == "grouped" else None

    def __call__(self, x: Tensor, shared_input: bool = False) -> Tensor:
        if self._grouped is not None:
            return self._grouped(x, shared_input)

        def one(p, b, xb):
            return functional_call(self.base, (p, b), (xb,))
        return vmap(one, in_dims=(0, 0, None if shared_input else 0))(self.params, self.buffers, x)

    def train(self, mode: bool = True) -> "PackedModel":
        self.base.train(mode)
        return self

    def parameters(self) -> List[Tensor]:
        return list(self.params.values())


def _per_run_loss(out: Tensor, y: Tensor) -> Tensor:
    """(K, B, classes), (K, B) → (K,) mean cross-entropy of each run."""
    k, b = y.shape
    return F.cross_entropy(out.reshape(k * b, -1), y.reshape(-1), reduction="none").view(k, b).mean(1)


def train_packed_epoch(pm: PackedModel, opt, x: Tensor, y: Tensor, batch_size: int, g_batches: List[torch.Generator],
                       g_augment: Optional[List[torch.Generator]] = None, max_steps: Optional[int] = None,
                       amp: Optional[torch.dtype] = None, lr_scale: Optional["PerRunLR"] = None) -> Dict[str, Any]:
    """One epoch of K runs; each run draws its own batches (and steps at its own learning rate when lr_scale is
    given). Returns per-run train loss/acc lists and the step count."""
    pm.train(True)
    batches = epoch_batches(len(x), batch_size, g_batches, x.device, max_steps)  # (K, B) each, on x's device
    loss_sum = torch.zeros(pm.k, device=x.device)
    correct = torch.zeros(pm.k, device=x.device, dtype=torch.long)
    seen = 0
    for idx in batches:
        xb, yb = x[idx], y[idx]  # (K, B, C, H, W), (K, B)
        if g_augment is not None:
            xb = torch.stack([augment_batch(xb[i], g) for i, g in enumerate(g_augment)])
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            out = pm(xb)
        losses = _per_run_loss(out.float(), yb)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # run i's term only reaches run i's parameter slice
        if lr_scale is None:
            opt.step()
        else:
            lr_scale.step(opt)
        loss_sum += losses.detach() * idx.shape[1]
        correct += (out.detach().argmax(-1) == yb).sum(1)
        seen += idx.shape[1]
    n = max(seen, 1)
    return {"train_loss": (loss_sum / n).tolist(), "train_acc": (correct.float() / n).tolist(), "steps": len(batches)}


@torch.no_grad()
def evaluate_packed(pm: PackedModel, x: Tensor, y: Tensor, batch_size: int = 1024,
                    amp: Optional[torch.dtype] = None) -> Dict[str, List[float]]:
    """Per-run mean cross-entropy and accuracy in eval mode (BN running statistics), on shared inputs."""
    pm.train(False)
    loss_sum = torch.zeros(pm.k, device=x.device)
    correct = torch.zeros(pm.k, device=x.device, dtype=torch.long)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            out = pm(xb, shared_input=True)  # (K, b, classes)
        yk = yb.expand(pm.k, -1)
        loss_sum += _per_run_loss(out.float(), yk) * len(yb)
        correct += (out.argmax(-1) == yk).sum(1)
    n = max(len(x), 1)
    return {"loss": (loss_sum / n).tolist(), "acc": (correct.float() / n).tolist()}


def run_packed(cfgs: Sequence[DictConfig], on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None
               ) -> List[Dict[str, Any]]:
    """Train len(cfgs) runs that differ only in seed as one pack; returns one result per config, shaped like
    run_experiment's. Timing is shared: each run is charged pack time / K (its amortized cost)."""
    reason = packable(cfgs)
    if reason:
        raise ConfigError(f"cannot pack these runs: {reason}.")
    for c in cfgs:
        validate_config(c)
    cfg = cfgs[0]
    device = configure_device(cfg)
    seeds = [int(c.seed) for c in cfgs]
    data = load_data(cfg.dataset)
    check_data(cfg, data)
    data = data.to(device)
    models = [build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, s, bn=cfg.bn).to(device)
              for s in seeds]
    n_params = count_params(models[0])
    pm = PackedModel(models, impl=str(cfg.pack_impl))
    opt = _optimizer(pm, cfg)
    sched = build_scheduler(opt, cfg.optim, int(cfg.train.epochs))
    lr_scale = PerRunLR(pm, [effective_lr(c.optim, int(c.train.batch_size)) for c in cfgs])
    g_batches = [generator(s, "batches") for s in seeds]
    g_augment = [generator(s, "augment", device=device) for s in seeds] if data.augment else None
    amp = amp_dtype(cfg.train)
    metrics: List[List[Dict[str, Any]]] = [[] for _ in seeds]
    status = ["ok"] * len(seeds)
    steps = 0
    for epoch in range(1, int(cfg.train.epochs) + 1):
        lr = opt.param_groups[0]["lr"]
        tr, pack_time = timed(lambda: train_packed_epoch(pm, opt, data.train_x, data.train_y,
                                                         int(cfg.train.batch_size), g_batches, g_augment, amp=amp,
                                                         lr_scale=lr_scale), device)
        per_run_time = pack_time / len(seeds)  # each run is charged its share of the pack's time
        steps += tr["steps"]
        val = evaluate_packed(pm, data.val_x, data.val_y, int(cfg.train.eval_batch_size), amp=amp)
        test = evaluate_packed(pm, data.test_x, data.test_y, int(cfg.train.eval_batch_size), amp=amp)
        for i in range(len(seeds)):
            if status[i] != "ok":
                continue  # a diverged run stopped (its slice keeps computing, touching nobody else's)
            run_i = {key: values[i] for key, values in tr.items() if key != "steps"}
            metrics[i].append(epoch_row(epoch, run_i, {k: v[i] for k, v in val.items()},
                                        {k: v[i] for k, v in test.items()}, lr_scale.lr(i, lr), steps, per_run_time,
                                        len(data.train_x)))
            if not math.isfinite(tr["train_loss"][i]):
                status[i] = "diverged"
        if on_epoch is not None:
            on_epoch(metrics[0][-1] if metrics[0] else {"epoch": epoch})
        if all(s != "ok" for s in status):
            break
        if sched is not None:
            sched.step()
    return [{"status": status[i], "metrics": metrics[i], "n_params": n_params, "device": str(device),
             "n_train": len(data.train_x), "n_val": len(data.val_x), "n_test": len(data.test_x),
             "pack_size": len(seeds), "execution": {**execution_info(cfg, device), "pack_impl": pm.impl}}
            for i in range(len(seeds))]


class PerRunLR:
    """Per-run learning rates in one optimizer: step at run 0's lr, then scale each run's update by lr_i / lr_0.

    Exact for SGD (momentum, Nesterov, L2 weight decay) and Adam: their update is lr × a term that does not depend on
    lr (the state — momentum buffer, moments — is updated from gradients alone), and the schedules (cosine, step)
    multiply every run's lr by the same factor, so the ratio holds at every step."""

    def __init__(self, pm: PackedModel, lrs: Sequence[float]) -> None:
        self.lrs = list(lrs)
        self.ratios = [lr / lrs[0] for lr in lrs]
        params = pm.parameters()
        # (K, 1, ..., 1) per parameter, broadcasting over its slice
        self.scales = [torch.tensor(self.ratios, dtype=p.dtype, device=p.device).view(-1, *[1] * (p.dim() - 1))
                       for p in params]
        self.params = params
        self.uniform = all(r == 1.0 for r in self.ratios)

    def lr(self, i: int, lr_0: float) -> float:
        """Run i's current lr, given run 0's (exactly its configured lr while no schedule has moved it)."""
        return self.lrs[i] * (lr_0 / self.lrs[0])

    @torch.no_grad()
    def step(self, opt: torch.optim.Optimizer) -> None:
        if self.uniform:
            opt.step()
            return
        before = torch._foreach_mul(self.params, 1.0)  # copies, (K, ...) each
        opt.step()
        # p ← before + ratio · (p − before)
        torch._foreach_sub_(self.params, before)
        torch._foreach_mul_(self.params, self.scales)
        torch._foreach_add_(self.params, before)


def _optimizer(pm: PackedModel, cfg):
    """The run's optimizer over the stacked parameters (elementwise updates: equal to one optimizer per run)."""
    return build_optimizer(pm.parameters(), cfg.optim, int(cfg.train.batch_size))


__all__ = ["PackedModel", "PerRunLR", "evaluate_packed", "packable", "run_packed", "train_packed_epoch"]
