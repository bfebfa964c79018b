"""Batch Renormalization (Ioffe 2017): in training, x̂ = (x − μ_B)/σ_B · r + d with r = σ_B/σ and d = (μ_B − μ)/σ
(μ, σ: the running statistics), clipped to [1/r_max, r_max] and [−d_max, d_max] and treated as constants (no gradient
flows through r and d); evaluation uses the running statistics, as BN. With r_max = 1 and d_max = 0 it is BN; as the
limits open, training normalizes toward the statistics inference will use, which corrects small and non-i.i.d.
batches. The limits follow the paper's schedule by training step: r_max = 1, d_max = 0 for the first
`bn.renorm_warmup` steps, then rising linearly to `bn.renorm_rmax` and `bn.renorm_dmax` over `bn.renorm_ramp` steps
(the paper: 5k warm-up steps, then r_max → 3 over 40k and d_max → 5 over 25k; here one ramp for both, sized to
bnablate's short runs). With bn.ghost_batch_size each chunk is renormalized on its own statistics, cut and folded
into the running statistics as ghost BN does under bn.ghost_stats (ghost_bn.py; the schedule still counts optimization
steps). The running σ is kept as BN keeps it (bn.renorm_avg=var: an average of the unbiased variance) or as Ioffe
2017's Algorithm 1 does (std: σ ← σ + m·(σ_B − σ), stored as running_var = σ² − eps so evaluation divides by σ).
Written by hand because torch has no Batch Renorm layer; a subclass of torch's BatchNorm so PreciseBN and the
fine-tuning modes treat it as BN. The step count is `num_batches_tracked` (one per forward)."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .ghost_bn import count_batch, normalization_batches

RENORM_AVG = {
    "var": "Batch Renorm's running variance an average of the batches' unbiased variances, as torch's BN keeps it",
    "std": "Batch Renorm's running σ an average of the batches' σ_B = √(var + eps), as Ioffe 2017 (Algorithm 1) keeps "
           "it",
}


class _RenormMixin:
    def _setup(self, warmup: int, ramp: int, rmax: float, dmax: float, ghost: Optional[int], ghost_stats: str,
               avg: str) -> None:
        self.warmup, self.ramp, self.rmax, self.dmax = int(warmup), int(ramp), float(rmax), float(dmax)
        self.ghost = ghost  # ghost batch size (bn.ghost_batch_size), None: the whole batch
        self.ghost_stats, self.chunks = ghost_stats, None  # bn.ghost_stats; set_ghost_chunks (ghost_bn.py)
        self.avg = avg  # bn.renorm_avg: "var" | "std"

    def limits(self) -> tuple:
        """(r_max, d_max) at the current step: 1 and 0 through the warm-up, then linear to the final values."""
        step = int(self.num_batches_tracked)  # type: ignore[attr-defined]
        t = min(max(step - self.warmup, 0) / self.ramp, 1.0) if self.ramp > 0 else float(step >= self.warmup)
        return 1.0 + t * (self.rmax - 1.0), t * self.dmax

    def forward(self, x: Tensor) -> Tensor:  # x: (N, C) or (N, C, H, W)
        self._check_input_dim(x)  # type: ignore[attr-defined]
        if not self.training:
            return super().forward(x)  # type: ignore[misc]
        r_max, d_max = self.limits()
        m = count_batch(self)  # type: ignore[arg-type]  # one optimization step, whatever the ghost chunks
        chunks = normalization_batches(self, x)  # type: ignore[arg-type]
        if self.ghost_stats == "step":
            # every chunk measured against the step's running statistics (each process against rank 0's broadcast
            # ones), then the first chunk (rank 0's share) alone folded in
            parts = [self._renorm(chunk, r_max, d_max) for chunk in chunks]
            self._update(*parts[0][1:], m)
            return torch.cat([y for y, *_ in parts]) if len(parts) > 1 else parts[0][0]
        out = []
        for chunk in chunks:  # "chunk": the running statistics updated after each chunk, in order (as ghost BN)
            y, *stats = self._renorm(chunk, r_max, d_max)
            self._update(*stats, m)
            out.append(y)
        return torch.cat(out) if len(out) > 1 else out[0]

    def _renorm(self, x: Tensor, r_max: float, d_max: float) -> Tuple[Tensor, Tensor, Tensor, float]:
        """(y, batch mean (C,), biased batch variance (C,), samples per channel) of one normalization batch."""
        dims = [0] + list(range(2, x.dim()))  # every axis but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)  # (1, C) or (1, C, 1, 1)
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        std = (var + self.eps).sqrt()  # type: ignore[attr-defined]
        with torch.no_grad():  # r and d are constants to the gradient (Ioffe 2017, Algorithm 1)
            running_std = (self.running_var + self.eps).sqrt()  # type: ignore[attr-defined]
            r = (std / running_std).clamp(1.0 / r_max, r_max)
            d = ((mean - self.running_mean) / running_std).clamp(-d_max, d_max)  # type: ignore[attr-defined]
        y = (x - mean.view(shape)) / std.view(shape) * r.view(shape) + d.view(shape)
        if self.affine:  # type: ignore[attr-defined]
            y = y * self.weight.view(shape) + self.bias.view(shape)  # type: ignore[attr-defined]
        return y, mean.detach(), var.detach(), x.numel() / x.shape[1]

    @torch.no_grad()
    def _update(self, mean: Tensor, var: Tensor, n: float, m: float) -> None:
        """Fold one normalization batch's statistics into the running ones with weight m (bn.renorm_avg)."""
        self.running_mean.lerp_(mean, m)  # type: ignore[attr-defined]
        if self.avg == "std":  # σ ← σ + m·(σ_B − σ), σ_B = √(var + eps) as the batch was normalized (Ioffe 2017)
            sigma = (self.running_var + self.eps).sqrt().lerp_((var + self.eps).sqrt(), m)  # type: ignore
            self.running_var.copy_((sigma.square() - self.eps).clamp_min_(0.0))  # type: ignore[attr-defined]
        else:
            self.running_var.lerp_(var * n / max(n - 1, 1), m)  # type: ignore[attr-defined]  # unbiased, as torch's BN

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", renorm: warmup={self.warmup}, ramp={self.ramp}, r_max={self.rmax}, "  # type: ignore
                                       f"d_max={self.dmax}, avg={self.avg}, ghost_batch_size={self.ghost}, "
                                       f"ghost_stats={self.ghost_stats}")


class BatchRenorm1d(_RenormMixin, nn.BatchNorm1d):
    def __init__(self, num_features: int, warmup: int = 0, ramp: int = 1000, rmax: float = 3.0, dmax: float = 5.0,
                 ghost: Optional[int] = None, ghost_stats: str = "chunk", avg: str = "var", **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self._setup(warmup, ramp, rmax, dmax, ghost, ghost_stats, avg)


class BatchRenorm2d(_RenormMixin, nn.BatchNorm2d):
    def __init__(self, num_features: int, warmup: int = 0, ramp: int = 1000, rmax: float = 3.0, dmax: float = 5.0,
                 ghost: Optional[int] = None, ghost_stats: str = "chunk", avg: str = "var", **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self._setup(warmup, ramp, rmax, dmax, ghost, ghost_stats, avg)
