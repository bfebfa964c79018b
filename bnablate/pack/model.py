"""A pack's model and optimizer step: K runs of one architecture as stacked (K, ...) tensors, per-run learning rates.

Each run keeps its own paired init, BN running statistics (stacked buffers updated in place), optimizer state and
learning rate. One Adam/SGD over the stacked (K, ...) parameters equals K separate optimizers, because their updates
are elementwise and each run's loss term only reaches its own slice. The epoch loop and the evaluation that train
and score a pack are the lone run's (`bnablate/train/loop.py`): a pack is K runs, a lone run K = 1."""

from __future__ import annotations

import copy
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from ..registry import check_choice
from ..data import augment_batch
from ..errors import ConfigError
from .grouped import GroupedForward, unsupported

PACK_IMPLS = ("auto", "grouped", "vmap")


def check_pack_impl(impl: str) -> None:
    """Reject an unknown pack_impl before anything trains (the sweep plan checks every job)."""
    check_choice("pack_impl", impl, PACK_IMPLS, ConfigError)


class PackedModel:
    """K copies of one architecture as stacked (K, ...) parameters/buffers, called on inputs (K, B, ...) or on
    (B, ...) shared by every run; returns (K, B, classes). impl: "grouped" (grouped convs / batched matmuls / wide
    norms, `grouped.py`), "vmap" (torch.func over the lone model), or "auto" (grouped where every layer has a grouped
    form, else vmap). Both compute the same K runs."""

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

    @property
    def module(self) -> nn.Module:
        """The structure whose train/eval flags both forms follow (BN layers are looked up here)."""
        return self.base

    def __call__(self, x: Tensor, shared_input: bool = False) -> Tensor:
        if self._grouped is not None:
            return self._grouped(x, shared_input)

        def one(p, b, xb):
            return functional_call(self.base, (p, b), (xb,))
        return vmap(one, in_dims=(0, 0, None if shared_input else 0))(self.params, self.buffers, x)

    def batch(self, t: Tensor, idx: Tensor) -> Tensor:
        """Rows idx (K, B) of t: each run's own batch, (K, B, ...)."""
        return t[idx]

    def augment(self, xb: Tensor, gens: Sequence[torch.Generator]) -> Tensor:
        return torch.stack([augment_batch(xb[i], g) for i, g in enumerate(gens)])  # each run its own stream

    def mean_losses(self, out: Tensor, y: Tensor) -> Tensor:
        """(K, B, classes), (K, B) → (K,) mean cross-entropy of each run."""
        k, b = y.shape
        return F.cross_entropy(out.reshape(k * b, -1), y.reshape(-1), reduction="none").view(k, b).mean(1)

    def summed_losses(self, out: Tensor, y: Tensor) -> Tensor:
        """(K, b, classes), labels (b,) shared by every run → (K,) summed cross-entropy."""
        k, b = out.shape[:2]
        return F.cross_entropy(out.reshape(k * b, -1), y.repeat(k), reduction="none").view(k, b).sum(1)

    def correct(self, out: Tensor, y: Tensor) -> Tensor:
        """Which predictions are right, (K, B) bool; y is (K, B) or (B,) shared."""
        return out.argmax(-1) == y

    def hits(self, out: Tensor, y: Tensor) -> Tensor:
        """(K,) correct predictions; y is (K, B) or (B,) shared."""
        return self.correct(out, y).sum(-1)

    def train(self, mode: bool = True) -> "PackedModel":
        self.base.train(mode)
        return self

    def parameters(self) -> List[Tensor]:
        return list(self.params.values())


class PerRunLR:
    """Per-run learning rates in one optimizer: step at run 0's lr, then scale each run's update by lr_i / lr_0.

    Exact for SGD (momentum, Nesterov, L2 weight decay) and Adam: their update is lr × a term that does not depend on
    lr (the state — momentum buffer, moments — is updated from gradients alone), and the schedules (cosine, step)
    multiply every run's lr by the same factor, so the ratio holds at every step."""

    def __init__(self, params: Sequence[Tensor], lrs: Sequence[float]) -> None:
        self.lrs = list(lrs)
        self.ratios = [lr / lrs[0] for lr in lrs]
        self.params = list(params)
        self.uniform = all(r == 1.0 for r in self.ratios)
        # (K, 1, ..., 1) per parameter, broadcasting over its slice
        self.scales = [] if self.uniform else [
            torch.tensor(self.ratios, dtype=p.dtype, device=p.device).view(-1, *[1] * (p.dim() - 1))
            for p in self.params]

    def lr(self, i: int, lr_0: float) -> float:
        """Run i's current lr, given run 0's (the optimizer's own; exactly the configured lr while no schedule has
        moved it)."""
        return lr_0 if i == 0 else self.lrs[i] * (lr_0 / self.lrs[0])

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


__all__ = ["PACK_IMPLS", "PackedModel", "PerRunLR", "check_pack_impl"]
