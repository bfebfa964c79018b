"""Which statistics BN normalizes with at evaluation (bn.eval_stats), PreciseBN, and the checks of the `bn` section."""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

from ..layers import batch_norm_layers
from ..layers.batch_renorm import RENORM_AVG
from ..layers.ghost_bn import GHOST_STATS
from ..registry import check_choice
from .loop import batch_indices

EVAL_STATS = {
    "running": "eval(): BN normalizes with its running statistics, which evaluation leaves untouched (the correct "
               "default)",
    "batch": "the common mistake — train() under no_grad: each evaluation batch (of train.batch_size) is normalized "
             "with its own statistics, dropout stays on, and every evaluation batch moves the running statistics",
    "precise": "PreciseBN (Wu & Johnson 2021): before each evaluation, the running statistics are recomputed as an "
               "equal-weight average over bn.precise_batches training batches with the weights frozen, then eval()",
    "precise_nodrop": "PreciseBN with dropout off during the recomputation: the statistics of the activations BN sees "
                      "at test time, which removes Dropout's variance shift (Li et al. 2019) from BN layers after "
                      "a Dropout",
    "population": "Wu & Johnson's population statistics: PreciseBN over bn.precise_batches training batches of "
                  "train.batch_size with ghost batches off (each batch normalized whole), then eval(): the statistics "
                  "of the optimization batch, whatever the normalization batch (precise without ghost batches)",
}
# the modes that recompute the running statistics before each evaluation (PreciseBN; a cumulative average)
RECOMPUTED = ("precise", "precise_nodrop", "population")

DROPOUT_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def validate_bn(bn) -> None:
    """Reject a `bn` section that cannot run, naming the fix (ValueError; the runner turns it into ConfigError)."""
    check_choice("bn.eval_stats", bn.eval_stats, EVAL_STATS)
    check_choice("bn.ghost_stats", bn.ghost_stats, GHOST_STATS)
    check_choice("bn.renorm_avg", bn.renorm_avg, RENORM_AVG)
    if bn.ghost_stats == "step" and bn.ghost_batch_size is None:
        raise ValueError("bn.ghost_stats=step keeps the running statistics of the first ghost batch of each step (what "
                         "rank 0 of a data-parallel run holds), and there are no ghost batches: set "
                         "bn.ghost_batch_size (e.g. train.batch_size/2, the share of each of two processes), or leave "
                         "bn.ghost_stats=chunk.")
    if int(bn.precise_batches) < 1:
        raise ValueError(f"bn.precise_batches must be ≥ 1, got {bn.precise_batches} (fvcore's PreciseBN uses 200).")
    if bn.momentum is not None and not 0.0 <= float(bn.momentum) <= 1.0:
        raise ValueError(f"bn.momentum must be in [0, 1] (PyTorch convention: the weight of the new batch; Keras' "
                         f"momentum m is PyTorch's 1 - m) or null for a cumulative average, got {bn.momentum}.")
    if not float(bn.eps) > 0:
        raise ValueError(f"bn.eps must be > 0 (it keeps the division finite for a constant channel), got {bn.eps}; "
                         f"PyTorch's default is 1e-5, Keras' 1e-3.")
    if not float(bn.running_var_init) >= 0:
        raise ValueError(f"bn.running_var_init must be ≥ 0 (a variance), got {bn.running_var_init}; PyTorch starts "
                         f"it at 1.")
    if float(bn.renorm_rmax) < 1 or float(bn.renorm_dmax) < 0 or int(bn.renorm_warmup) < 0 or int(bn.renorm_ramp) < 0:
        raise ValueError(f"Batch Renorm needs bn.renorm_rmax ≥ 1 (r ∈ [1/r_max, r_max]), bn.renorm_dmax ≥ 0 and "
                         f"non-negative step counts, got rmax={bn.renorm_rmax}, dmax={bn.renorm_dmax}, warmup="
                         f"{bn.renorm_warmup}, ramp={bn.renorm_ramp}; Ioffe 2017 ends at r_max=3, d_max=5.")
    if float(bn.conv_beta_init) != 0.0 and not bn.affine:
        raise ValueError(f"bn.conv_beta_init={bn.conv_beta_init} needs a β to initialise: set bn.affine=true, or leave "
                         f"bn.conv_beta_init at 0.")


def sample_batches(n: int, batch_size: int, n_batches: int, g: torch.Generator) -> List[Tensor]:
    """n_batches index batches drawn like training batches (shuffled passes over n rows, as many passes as needed)."""
    out: List[Tensor] = []
    while len(out) < n_batches:
        out += batch_indices(n, batch_size, g)
    return out[:n_batches]


@torch.no_grad()
def precise_bn(model: nn.Module, x: Tensor, batch_size: int, n_batches: int, generator: torch.Generator,
               dropout: bool = True, ghost: bool = True) -> int:
    """PreciseBN: replace every BN layer's running statistics by their equal-weight average over `n_batches`
    training batches of `x` (N, C, H, W), the weights frozen. Returns the number of BN layers updated.

    The algorithm of fvcore's `update_bn_stats` and `torch.optim.swa_utils.update_bn` (which only knows torch's
    BN classes, so the from-scratch BN would be skipped): reset the statistics, set momentum None so each layer keeps
    a cumulative average, forward the batches in train mode, restore momentum and mode. The running mean is then the
    mean of the batch means (the population mean when the batches cover the data equally) and the running variance
    the mean of the unbiased batch variances. Train mode also turns dropout on, as in those references; its masks
    come from a forked global RNG so the training run's own stream is left where it was. dropout=False keeps every
    Dropout layer in eval mode (identity) for the pass, so a BN after a Dropout gets the statistics of the
    dropout-free activations it normalizes at test time: the variance-shift remedy (bn.eval_stats=precise_nodrop).
    Ghost layers (ghost_bn.py) average every chunk's statistics (bn.ghost_stats concerns training's running
    statistics, not this average); ghost=False turns ghost batches off for the pass, so each batch is normalized
    whole: Wu & Johnson's population statistics (bn.eval_stats=population)."""
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    saved = {m: (m.momentum, getattr(m, "ghost", None), getattr(m, "ghost_stats", None)) for m in layers}
    was_training = model.training
    fork = [x.device] if x.device.type == "cuda" else []
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
            if saved[m][1] is not None:  # a ghost layer
                m.ghost, m.ghost_stats = (m.ghost if ghost else None), "chunk"
        model.train()
        if not dropout:
            for m in model.modules():
                if isinstance(m, DROPOUT_LAYERS):
                    m.eval()
        with torch.random.fork_rng(devices=fork):
            for idx in sample_batches(len(x), batch_size, n_batches, generator):
                model(x[idx.to(x.device)])
    finally:
        for m, (momentum, size, stats) in saved.items():
            m.momentum = momentum
            if size is not None:
                m.ghost, m.ghost_stats = size, stats
        model.train(was_training)
    return len(layers)
