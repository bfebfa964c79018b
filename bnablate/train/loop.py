"""One epoch of training and one evaluation pass, as plain functions over in-memory tensors."""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import augment_batch

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
                    max_steps: Optional[int] = None, amp: Optional[torch.dtype] = None) -> Dict[str, float]:
    """Train over (x (N,C,H,W), y (N,)) once (or for max_steps batches, as benchmarks do). Losses are summed on the
    device and read once at the end: no host/device synchronisation inside the step loop. amp: autocast dtype for
    the forward pass (bf16), None for FP32."""
    model.train()
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


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1024,
             amp: Optional[torch.dtype] = None) -> Dict[str, float]:
    """Mean cross-entropy and accuracy in eval mode (BN uses running statistics); restores the previous mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            out = model(xb)
        loss_sum += F.cross_entropy(out.float(), yb, reduction="sum")
        correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return {"loss": float(loss_sum) / n, "acc": float(correct) / n}
