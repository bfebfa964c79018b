"""One epoch loop and one evaluation for a pack of K ≥ 1 runs (a lone run is K = 1), over in-memory tensors."""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import augment_batch
from ..layers import batch_norm_layers

T = TypeVar("T")
Generators = Union[torch.Generator, Sequence[torch.Generator]]


def timed(fn: Callable[[], T], device: torch.device) -> Tuple[T, float]:
    """(fn(), wall seconds), synchronising CUDA so the queued GPU work falls inside the interval."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


class LoneRun:
    """One model as a set of K = 1 runs: the interface the loop trains (`bnablate.pack.PackedModel` is the K > 1 one).
    A run set says how its runs' batches are gathered, augmented and scored; a lone run keeps plain (B, ...) tensors
    throughout — the same tensors, kernels and numbers as a plain training loop, with no K axis to add or remove."""

    k = 1

    def __init__(self, model: nn.Module, params: Optional[List[nn.Parameter]] = None) -> None:
        self.model = model  # may be torch.compile's wrapper: it shares the parameters
        self._params = params

    @property
    def module(self) -> nn.Module:
        """The modules whose train/eval flags the forward follows (BN layers are looked up here)."""
        return self.model

    def __call__(self, x: Tensor, shared_input: bool = False) -> Tensor:
        return self.model(x)  # (B, ...) → (B, classes)

    def batch(self, t: Tensor, idx: Tensor) -> Tensor:
        """Rows idx (1, B) of t as (B, ...) (keeping t's memory format, channels_last included)."""
        return t[idx[0]]

    def augment(self, xb: Tensor, gens: Sequence[torch.Generator]) -> Tensor:
        return augment_batch(xb, gens[0])

    def mean_losses(self, out: Tensor, y: Tensor) -> Tensor:
        """The run's mean cross-entropy, a 0-d tensor (what the loop backpropagates)."""
        return F.cross_entropy(out, y)

    def summed_losses(self, out: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(out, y, reduction="sum")

    def correct(self, out: Tensor, y: Tensor) -> Tensor:
        """Which predictions are right, (B,) bool."""
        return out.argmax(-1) == y

    def hits(self, out: Tensor, y: Tensor) -> Tensor:
        """Correct predictions, 0-d."""
        return self.correct(out, y).sum()

    def train(self, mode: bool = True) -> "LoneRun":
        self.model.train(mode)
        return self

    def parameters(self) -> List[nn.Parameter]:
        """What the optimizer updates (fine-tuning hands over only the trainable ones)."""
        return list(self.model.parameters()) if self._params is None else self._params


def as_runs(model):
    """A plain nn.Module is a LoneRun; a LoneRun or PackedModel passes as it is (notebooks can hand a model in)."""
    return LoneRun(model) if isinstance(model, nn.Module) else model


def _generators(g: Optional[Generators]) -> Optional[List[torch.Generator]]:
    return None if g is None else [g] if isinstance(g, torch.Generator) else list(g)


def batch_indices(n: int, batch_size: int, g: torch.Generator) -> List[Tensor]:
    """A shuffled epoch as index batches. A trailing batch of one sample is folded into the previous batch, so BN
    never sees a single-sample batch; the rule ignores the model, so every variant sees identical batches."""
    chunks = list(torch.randperm(n, generator=g).split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        last = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], last])
    return chunks


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over n images: batch_indices' count (n / batch_size, rounded up, less a folded
    single-sample tail); a data-parallel run's processes step together once per batch."""
    return len(batch_indices(n, batch_size, torch.Generator()))


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


def _per_run(total: Tensor, n: int) -> List[float]:
    """(K,) device sums → K Python means: one device read, divided in float64 as a lone run's records always were."""
    return [v / max(n, 1) for v in total.tolist()]


def train_one_epoch(runs, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, batch_size: int, g_batches: Generators,
                    g_augment: Optional[Generators] = None, max_steps: Optional[int] = None,
                    amp: Optional[torch.dtype] = None, bn_eval: bool = False,
                    step: Optional[Callable[[torch.optim.Optimizer], None]] = None,
                    probe=None) -> Dict[str, object]:
    """Train K runs over (x (N,C,H,W), y (N,)) once (or for max_steps batches, as benchmarks do): each run draws its
    own batches (g_batches, one generator per run) and augmentation. runs: a LoneRun / nn.Module (K = 1) or a
    PackedModel. Losses are summed on the device and read once at the end: no host/device synchronisation inside the
    step loop. amp: autocast dtype for the forward pass (bf16), None for FP32. bn_eval: the batch-norm layers stay in
    eval mode (they normalize with, and leave untouched, their running statistics), the rest trains. step: how the
    optimizer steps (a pack's per-run learning rates, `PerRunLR.step`); default opt.step(). probe: a lone run's
    `train.probe.Probe`, which reads the first step's gradients and block outputs. Returns per-run
    train_loss / train_acc lists and the step count."""
    runs = as_runs(runs)
    gens, augs = _generators(g_batches), _generators(g_augment)
    runs.train(True)
    if bn_eval:
        for m in batch_norm_layers(runs.module):
            m.eval()
    loss_sum = torch.zeros(runs.k, device=x.device)
    correct = torch.zeros(runs.k, device=x.device, dtype=torch.long)
    batches = epoch_batches(len(x), batch_size, gens, x.device, max_steps)  # (K, B) each, on x's device
    if hasattr(x, "prefetch"):  # images streamed from disk (data/stream.py): decode this epoch's batches ahead
        x.prefetch(batches)
    seen = 0
    for i, idx in enumerate(batches):
        probing = probe is not None and i == 0
        if probing:
            probe.arm()
        xb, yb = runs.batch(x, idx), runs.batch(y, idx)  # (K, B, C, H, W), (K, B); a lone run (B, C, H, W), (B,)
        if augs is not None:
            xb = runs.augment(xb, augs)
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            out = runs(xb)
        losses = runs.mean_losses(out.float(), yb)  # (K,), or 0-d for a lone run
        opt.zero_grad(set_to_none=True)
        (losses.sum() if losses.dim() else losses).backward()  # run i's term only reaches run i's parameters
        if probing:
            probe.read()  # the gradients before this step moves anything (epoch 1: at initialisation)
        if step is None:
            opt.step()
        else:
            step(opt)
        loss_sum += losses.detach() * idx.shape[1]
        correct += runs.hits(out.detach(), yb)
        seen += idx.shape[1]
    return {"train_loss": _per_run(loss_sum, seen), "train_acc": _per_run(correct, seen), "steps": len(batches)}


def eval_slices(n: int, batch_size: int, fold_single: bool = False) -> List[slice]:
    """Consecutive evaluation batches. fold_single: a trailing batch of one sample joins the previous one (as in
    training), so evaluating with batch statistics never meets a single-sample batch (eval mode keeps the plain split,
    whose numbers earlier records hold)."""
    starts = list(range(0, n, batch_size))
    if fold_single and len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [slice(s, e) for s, e in zip(starts, starts[1:] + [n])]


@torch.no_grad()
def evaluate(runs, x: Tensor, y: Tensor, batch_size: int = 1024, bn_stats: str = "running",
             amp: Optional[torch.dtype] = None, masks: bool = False) -> Dict[str, object]:
    """Per-run mean cross-entropy and accuracy of K runs (a LoneRun / nn.Module, or a PackedModel) on the same
    inputs, under no_grad; restores the previous mode. bn_stats='running': eval mode (BN uses its running
    statistics, which stay untouched). 'batch' reproduces the common mistake of evaluating in train mode: BN
    normalizes each batch with that batch's statistics and, as in PyTorch, updates its running statistics with every
    batch; dropout is on too (its masks from a forked global RNG, so training's stream is unchanged). amp: autocast
    dtype (bf16), None for FP32. masks: also return "correct", which examples each run got right, a (K, N) bool
    tensor left on x's device (acc is its row means)."""
    runs = as_runs(runs)
    was_training = runs.module.training
    runs.train(bn_stats == "batch")
    fork = [x.device] if x.device.type == "cuda" else []
    loss_sum = torch.zeros(runs.k, device=x.device)
    correct = torch.zeros(runs.k, device=x.device, dtype=torch.long)
    parts: List[Tensor] = []  # per batch (K, b) bool, or (b,) for a lone run
    slices = eval_slices(len(x), batch_size, fold_single=bn_stats == "batch")
    if hasattr(x, "prefetch"):  # images streamed from disk (data/stream.py)
        x.prefetch(slices)
    with torch.random.fork_rng(devices=fork, enabled=bn_stats == "batch"):
        for part in slices:
            xb, yb = x[part], y[part]
            with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
                out = runs(xb, shared_input=True)  # (K, b, classes); a lone run (b, classes)
            loss_sum += runs.summed_losses(out.float(), yb)
            right = runs.correct(out, yb)
            correct += right.sum(-1)
            if masks:
                parts.append(right)
    runs.train(was_training)
    result: Dict[str, object] = {"loss": _per_run(loss_sum, len(x)), "acc": _per_run(correct, len(x))}
    if masks:
        result["correct"] = torch.cat(parts, dim=-1).view(runs.k, len(x))
    return result
