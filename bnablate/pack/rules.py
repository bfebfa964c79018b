"""Which runs can share a pack at all: the pack key (what they must agree on) and the options packs cannot honour."""

from __future__ import annotations

from typing import Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from ..config import KEYS
from ..keys import without


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
        return "dropout masks are drawn per run from separate streams, which one pack cannot reproduce"
    if cfg.train.compile or cfg.train.channels_last:
        return "train.compile and train.channels_last apply to unpacked runs only"
    if cfg.train.precision != "fp32":  # torch 2.x: vmap's batch_norm rule rejects bf16 inputs with FP32 weights
        return "bf16 autocast is not supported under vmap's batch-norm rule"
    from ..train.bn_stats import RECOMPUTED  # imported here: the training package imports this module

    precise = cfg.bn.eval_stats in RECOMPUTED  # PreciseBN: momentum=None while it recomputes
    if precise or cfg.bn.momentum is None:
        what = f"bn.eval_stats={cfg.bn.eval_stats}" if precise else "bn.momentum=null"
        return f"{what} keeps a cumulative average of BN statistics, which reads each run's batch count as a " \
               "Python number"
    if cfg.variant.norm == "batch_renorm":
        return "Batch Renorm's clipped corrections have no grouped or vmap form here"
    from ..models import MODELS  # the model registry (imported here: the planner needs it only for this check)

    if getattr(MODELS.get(cfg.model.name), "transformer", False):
        return "transformer models (model=vit) train alone: their attention has no grouped form here"
    if cfg.optim.wd_exclude != "none":
        return "optim.wd_exclude tells parameters apart by their shape and name, which a pack's stacked ones hide"
    if cfg.train.probe:
        return "train.probe reads one model's gradients and block outputs"
    if cfg.train.checkpoint:
        return "train.checkpoint saves and resumes one run's state"
    if int(cfg.train.nproc) > 1:
        return "a data-parallel run (train.nproc > 1) spreads one run over several processes"
    if cfg.finetune.source is not None:
        return "fine-tuning starts each run from its own pretraining checkpoint and BN mode, which packs do not load"
    return None
