"""`bnablate bench --inference`: eval-time cost of BN per variant, unfused vs folded into the preceding conv/linear."""

from __future__ import annotations

import copy
import statistics
import time
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from ..config import compose_config
from ..data import dataset_spec
from ..models import build_model

INFERENCE_MODELS = (("lenet", "fashion_mnist"), ("cnn", "cifar10"))
INFERENCE_VARIANTS = ("no_bn", "bn_pre_act", "bn_post_act", "bn_post_pool")


def fold_bn(model: nn.Module) -> Tuple[nn.Module, int, int]:
    """A copy with every BatchNorm that directly follows a conv/linear folded into it (exact in eval mode).
    Returns (model, folded, left): a BN after the activation or pooling is not an affine map of the layer output that
    can be merged backwards, so it is left in place."""
    fused = copy.deepcopy(model).eval()
    folded = left = 0
    for block in fused.modules():
        if not isinstance(block, nn.Sequential):
            continue
        names = list(dict(block.named_children()))
        for i, name in enumerate(names):
            bn = getattr(block, name)
            if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
                continue
            prev = getattr(block, names[i - 1]) if i > 0 else None
            if isinstance(prev, nn.Conv2d):
                setattr(block, names[i - 1], fuse_conv_bn_eval(prev, bn))
            elif isinstance(prev, nn.Linear):
                setattr(block, names[i - 1], fuse_linear_bn_eval(prev, bn))
            else:
                left += 1
                continue
            setattr(block, name, nn.Identity())
            folded += 1
    return fused, folded, left


def _randomize_bn_stats(model: nn.Module, g: torch.Generator) -> None:
    """Non-trivial running statistics and affine params, so folding is actually exercised."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@torch.inference_mode()
def _seconds_per_sample(model: nn.Module, x: torch.Tensor, min_seconds: float) -> float:
    """Loop the forward pass for at least min_seconds; seconds per sample."""
    n, t0 = 0, time.perf_counter()
    while True:
        model(x)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed / (n * len(x))


def inference_bench(reps: int = 7, batch_sizes: Sequence[int] = (1, 256), min_seconds: float = 0.25) -> List[Dict]:
    """Rows per (model, variant, batch size): eval samples/s unfused and BN-folded, BNs folded/left, max |Δ output|,
    and BN's overhead over the same model without BN. Every model of one (architecture, batch size) is timed
    round-robin in each repetition, so machine drift hits all alike; figures are medians of per-repetition ratios."""
    g = torch.Generator().manual_seed(0)
    rows: List[Dict] = []
    for model_name, dataset in INFERENCE_MODELS:
        spec = dataset_spec(dataset)
        nets: Dict[str, Tuple[nn.Module, nn.Module, int, int]] = {}
        for variant in INFERENCE_VARIANTS:
            cfg = compose_config([f"model={model_name}", f"dataset={dataset}", f"variant={variant}"])
            model = build_model(cfg.model, cfg.variant, spec.input_shape, spec.num_classes, seed=0).eval()
            _randomize_bn_stats(model, g)
            nets[variant] = (model, *fold_bn(model))
        for bs in batch_sizes:
            x = torch.randn(bs, *spec.input_shape, generator=g)
            times: Dict[Tuple[str, str], List[float]] = {}
            for model, fused, _, _ in nets.values():  # warm-up
                _seconds_per_sample(model, x, 0.05), _seconds_per_sample(fused, x, 0.05)
            for rep in range(reps):
                order = list(nets.items()) if rep % 2 == 0 else list(nets.items())[::-1]
                for variant, (model, fused, _, _) in order:
                    times.setdefault((variant, "unfused"), []).append(_seconds_per_sample(model, x, min_seconds))
                    times.setdefault((variant, "folded"), []).append(_seconds_per_sample(fused, x, min_seconds))
            base = times[("no_bn", "unfused")]
            for variant, (model, fused, folded, left) in nets.items():
                with torch.inference_mode():
                    err = float((model(x) - fused(x)).abs().max())
                un, fo = times[(variant, "unfused")], times[(variant, "folded")]
                rows.append({
                    "model": model_name, "dataset": dataset, "variant": variant, "batch_size": bs,
                    "unfused_samples_per_s": 1 / statistics.median(un), "folded_samples_per_s": 1 / statistics.median(fo),
                    "bn_folded": folded, "bn_left": left, "max_abs_diff": err,
                    "unfused_overhead_pct": 100 * (statistics.median(u / b for u, b in zip(un, base)) - 1),
                    "folded_overhead_pct": 100 * (statistics.median(f / b for f, b in zip(fo, base)) - 1),
                })
    return rows
