"""One epoch of training and one evaluation pass, as plain functions over in-memory tensors."""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import augment_batch
from ..layers import batch_norm_layers

T = TypeVar("T")


def timed(fn: Callable[[], T], device: torch.device) -> Tuple[T, float]:
    """(fn(), wall seconds), synchronising CUDA so the queued GPU work falls inside the interval."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def batch_indices(n: int, batch_size: int, g: torch.Generator) -> List[Tensor]:
    """A shuffled epoch as index batches. A trailing batch of one sample is folded into the previous batch, so BN
    never sees a single-sample batch; the rule ignores the model, so every variant sees identical batches."""
    chunks = list(torch.randperm(n, generator=g).split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        last = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], last])
    return chunks


def epoch_batches(n: int, batch_size: int, generators: Sequence[torch.Generator], device: torch.device,
                  max_steps: Optional[int] = None) -> List[Tensor]:
    """The epoch's index batches of K runs (one generator each) as (K, B) tensors on `device`, copied there in one
    transfer per epoch: a host→device copy inside the step loop would wait for the GPU's queue every step. The order
    is batch_indices' (drawn on the CPU), so results do not depend on the device."""
    orders = [batch_indices(n, batch_size, g)[:max_steps] for g in generators]
    if not orders[0]:  # max_steps=0 (a benchmark without warm-up)
        return []
    sizes = [len(b) for b in orders[0]]
    flat = torch.stack([torch.cat(o) for o in orders]).to(device, non_blocking=True)  # (K, steps·B)
    return list(flat.split(sizes, dim=1))


def train_one_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, batch_size: int,
                    g_batches: torch.Generator, g_augment: Optional[torch.Generator] = None,
                    max_steps: Optional[int] = None, amp: Optional[torch.dtype] = None,
                    bn_eval: bool = False) -> Dict[str, float]:
    """Train over (x (N,C,H,W), y (N,)) once (or for max_steps batches, as benchmarks do). Losses are summed on the
    device and read once at the end: no host/device synchronisation inside the step loop. amp: autocast dtype for
    the forward pass (bf16), None for FP32. bn_eval: the batch-norm layers stay in eval mode (they normalize with,
    and leave untouched, their running statistics), the rest trains."""
    model.train()
    if bn_eval:
        for m in batch_norm_layers(model):
            m.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    steps, seen = 0, 0
    for idx in epoch_batches(len(x), batch_size, [g_batches], x.device, max_steps):
        idx = idx[0]
        xb, yb = x[idx], y[idx]
        if g_augment is not None:
            xb = augment_batch(xb, g_augment)
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            out = model(xb)
        loss = F.cross_entropy(out.float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)
        correct += (out.detach().argmax(1) == yb).sum()
        steps += 1
        seen += len(idx)
    n = max(seen, 1)
    return {"train_loss": float(loss_sum) / n, "train_acc": float(correct) / n, "steps": steps}


def eval_slices(n: int, batch_size: int, fold_single: bool = False) -> List[slice]:
    """Consecutive evaluation batches. fold_single: a trailing batch of one sample joins the previous one (as in
    training), so evaluating with batch statistics never meets a single-sample batch (eval mode keeps the plain split,
    whose numbers earlier records hold)."""
    starts = list(range(0, n, batch_size))
    if fold_single and len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [slice(s, e) for s, e in zip(starts, starts[1:] + [n])]


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1024, bn_stats: str = "running",
             amp: Optional[torch.dtype] = None) -> Dict[str, float]:
    """Mean cross-entropy and accuracy under no_grad; restores the previous mode. bn_stats='running': eval mode (BN
    uses its running statistics, which stay untouched). 'batch' reproduces the common mistake of evaluating in train
    mode: BN normalizes each batch with that batch's statistics and, as in PyTorch, updates its running statistics
    with every batch; dropout is on too (its masks from a forked global RNG, so training's stream is unchanged).
    amp: autocast dtype (bf16), None for FP32."""
    was_training = model.training
    model.train(bn_stats == "batch")
    fork = [x.device] if x.device.type == "cuda" else []
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    with torch.random.fork_rng(devices=fork, enabled=bn_stats == "batch"):
        for part in eval_slices(len(x), batch_size, fold_single=bn_stats == "batch"):
            xb, yb = x[part], y[part]
            with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
                out = model(xb)
            loss_sum += F.cross_entropy(out.float(), yb, reduction="sum")
            correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return {"loss": float(loss_sum) / n, "acc": float(correct) / n}
