"""Fine-tuning: a pretraining checkpoint trained once per pretraining config and reused, head re-init, BN modes."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ..config import CONF_DIR, DatasetConfig, to_plain
from ..data import DataSplits, class_count, dataset_shape, load_data, selected_classes
from ..layers import BATCH_NORM_TYPES, BATCH_STAT_NORMS, batch_norm_layers, has_norm
from ..layers.ghost_bn import set_ghost_chunks
from ..models import build_model
from ..registry import check_choice, unknown_name_message
from ..atomic import atomic_file
from ..results.records import run_key
from ..seeding import derive_seed, generator
from .bn_stats import precise_bn
from .loop import evaluate, steps_per_epoch, train_one_epoch
from .optim import LRSchedule, build_optimizer

FINETUNE_BN = {
    "train": "every BN layer trained: γ, β learned, running statistics updated by the target batches",
    "freeze_affine": "γ, β kept at their pretrained values; running statistics updated by the target batches",
    "freeze": "γ, β fixed and BN kept in eval mode: it normalizes with the source's running statistics, which stay "
              "untouched",
    "reset": "running statistics re-estimated on the target training data (PreciseBN, bn.precise_batches batches) "
             "before fine-tuning, then trained as `train`",
    "frozen": "every BN layer replaced by torchvision's FrozenBatchNorm2d (detectron2's): the source's statistics and "
              "affine as fixed buffers, the same in training and evaluation, nothing trainable",
}
HEAD = "head"  # every model's final Linear: re-initialised for the target classes
# Dataset keys a source takes from the target's config: where files live and how every split is made.
SHARED_DATASET_KEYS = ("root", "cache_dir", "download", "verify", "val_fraction", "test_fraction", "split_seed",
                       "normalize")


def source_dataset_config(cfg) -> DictConfig:
    """The source's dataset config: conf/dataset/<finetune.source>.yaml on the schema, with the target's file
    locations and split settings, and finetune.source_classes / source_subset as its classes / train_subset."""
    name = str(cfg.finetune.source)
    path = CONF_DIR / "dataset" / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
        raise ValueError(unknown_name_message("finetune.source", name, options))
    values = OmegaConf.load(path)
    values.pop("defaults", None)
    src = OmegaConf.merge(OmegaConf.structured(DatasetConfig), values)
    for key in SHARED_DATASET_KEYS:
        src[key] = cfg.dataset[key]
    src.classes = cfg.finetune.source_classes
    src.train_subset = cfg.finetune.source_subset
    return src


def validate_finetune(cfg) -> None:
    """Every fine-tuning check that needs no data (ValueError naming the fix; the runner makes it a ConfigError)."""
    ft = cfg.finetune
    check_choice("finetune.bn", ft.bn, FINETUNE_BN)
    if ft.source is None:
        if ft.bn != "train":
            raise ValueError(f"finetune.bn={ft.bn} applies only when fine-tuning: set finetune.source to the dataset "
                             f"to pretrain on (e.g. finetune.source=mnist), or leave finetune.bn=train.")
        return
    src = source_dataset_config(cfg)
    if int(ft.source_epochs) < 1:
        raise ValueError(f"finetune.source_epochs must be ≥ 1, got {ft.source_epochs}.")
    batch_norm = has_norm(cfg.variant) and cfg.variant.norm in BATCH_STAT_NORMS
    if int(ft.source_batch_size) < (2 if batch_norm else 1):
        raise ValueError(f"finetune.source_batch_size must be ≥ {2 if batch_norm else 1} (batch norm needs two samples "
                         f"per batch), got {ft.source_batch_size}.")
    if ft.bn != "train" and not batch_norm:
        raise ValueError(f"finetune.bn={ft.bn} acts on batch-norm layers, and variant "
                         f"{cfg.variant.norm}/{cfg.variant.placement} has none; use finetune.bn=train or a BN variant "
                         f"(e.g. variant=bn_pre_act).")
    if ft.bn in ("freeze", "frozen") and cfg.bn.eval_stats != "running":
        raise ValueError(f"finetune.bn=freeze keeps the source's running statistics, which bn.eval_stats="
                         f"{cfg.bn.eval_stats} would overwrite at every evaluation; use bn.eval_stats=running, or "
                         f"finetune.bn=freeze_affine / reset.")
    (source_shape, source_classes), (target_shape, _) = dataset_shape(src), dataset_shape(cfg.dataset)
    selected_classes(ft.source_classes, source_classes, key="finetune.source_classes")
    if source_shape[0] != target_shape[0]:
        raise ValueError(f"finetune.source={ft.source} has {source_shape[0]} input channel(s) but dataset="
                         f"{cfg.dataset.name} has {target_shape[0]}: the first layer's weights cannot carry over. "
                         f"Pick a source with {target_shape[0]} channel(s).")
    src_model = build_model(cfg.model, cfg.variant, source_shape, class_count(src), 0, bn=cfg.bn)
    tgt_model = build_model(cfg.model, cfg.variant, target_shape, class_count(cfg.dataset), 0, bn=cfg.bn)
    tgt_shapes = {k: tuple(v.shape) for k, v in tgt_model.state_dict().items() if not _is_head(k)}
    src_shapes = {k: tuple(v.shape) for k, v in src_model.state_dict().items() if not _is_head(k)}
    bad = [k for k in tgt_shapes if src_shapes.get(k) != tgt_shapes[k]]
    if bad:
        raise ValueError(f"{cfg.model.name} pretrained on {ft.source} {tuple(source_shape)} does not fit "
                         f"{cfg.dataset.name} {tuple(target_shape)}: {bad[0]} is {src_shapes.get(bad[0])} vs "
                         f"{tgt_shapes[bad[0]]}. Use a source with the target's input size, or a model whose layers "
                         f"do not depend on it (lenet takes 28×28 and 32×32 alike).")


def _is_head(name: str) -> bool:
    return name.split(".", 1)[0] == HEAD


def pretrain_config(cfg) -> Dict[str, Any]:
    """Everything that determines the pretrained weights, as a plain dict shaped like a run config (so run_key's
    rules apply: paths excluded, keys at their neutral values left out)."""
    plain = to_plain(cfg)
    return {"pretrain": 1, "dataset": to_plain(source_dataset_config(cfg)), "model": plain["model"],
            "variant": plain["variant"], "optim": plain["optim"],
            # ghost_stats, renorm_avg: left out at their neutral values (run_key), so older checkpoints keep their name
            "bn": {k: plain["bn"][k] for k in ("momentum", "eps", "affine", "ghost_stats", "renorm_avg")},
            "train": {"epochs": int(cfg.finetune.source_epochs), "batch_size": int(cfg.finetune.source_batch_size)},
            "seed": int(cfg.seed)}


def checkpoint_path(cfg) -> Path:
    return Path(cfg.finetune.checkpoint_dir) / f"pretrain-{run_key(pretrain_config(cfg))}.pt"


def pretrain(cfg, device: torch.device) -> Dict[str, Any]:
    """Train the source model from the run's seed (its own named streams) for finetune.source_epochs; returns the
    checkpoint: CPU state_dict and metadata (source accuracies in eval mode, time)."""
    seed, src = int(cfg.seed), source_dataset_config(cfg)
    torch.manual_seed(derive_seed(seed, "pretrain", "torch"))
    data = load_data(src).to(device)
    bs = int(cfg.finetune.source_batch_size)
    if bs > len(data.train_x):
        raise ValueError(f"finetune.source_batch_size={bs} is larger than the source's {len(data.train_x)} training "
                         f"images; lower it.")
    model = build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, seed, bn=cfg.bn).to(device)
    set_ghost_chunks(model, bs)
    opt = build_optimizer(model.parameters(), cfg.optim, bs, model=model)
    # pretraining steps without the warm-up, as it always has; a schedule counting steps counts the source's
    schedule = LRSchedule(opt, cfg.optim, int(cfg.finetune.source_epochs),
                          steps_per_epoch(len(data.train_x), bs), warmup=False)
    g_batches = generator(seed, "pretrain", "batches")
    g_augment = generator(seed, "pretrain", "augment", device=device) if data.augment else None
    t0, losses = time.perf_counter(), []
    for _ in range(int(cfg.finetune.source_epochs)):  # the runs' own epoch loop and evaluation, K = 1
        loss = train_one_epoch(model, opt, data.train_x, data.train_y, bs, g_batches, g_augment,
                               step=schedule.step)["train_loss"][0]
        losses.append(loss)
        if not math.isfinite(loss):
            raise RuntimeError(f"pretraining on {src.name} diverged (train loss {loss}); lower optim.lr.")
        schedule.end_epoch()
    val = evaluate(model, data.val_x, data.val_y, int(cfg.train.eval_batch_size))
    test = evaluate(model, data.test_x, data.test_y, int(cfg.train.eval_batch_size))
    meta = {"source": src.name, "epochs": int(cfg.finetune.source_epochs), "source_train_loss": losses[-1],
            "source_val_acc": val["acc"][0], "source_test_acc": test["acc"][0], "seconds": time.perf_counter() - t0}
    return {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta}


def load_or_pretrain(cfg, device: torch.device) -> Tuple[Dict[str, Any], bool]:
    """The pretraining checkpoint for cfg and whether it was trained now: read from finetune.checkpoint_dir when
    there, else trained and written atomically (temp file + rename: a crash leaves no partial checkpoint; two
    processes training the same key write identical files)."""
    path = checkpoint_path(cfg)
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True), False
        except Exception as e:  # noqa: BLE001  (unreadable: train it again and replace it)
            warnings.warn(f"pretraining checkpoint {path} could not be read ({e}); training it again.", stacklevel=2)
    ckpt = pretrain(cfg, device)
    with atomic_file(path) as f:
        torch.save(ckpt, f)
    return ckpt, True


def prepare_finetune(cfg, model: nn.Module, data: DataSplits, device: torch.device) -> Dict[str, Any]:
    """Load the pretrained weights into `model` (built for the target) except its head, which keeps its fresh
    init for the target classes, and apply finetune.bn: freeze_affine / freeze stop γ, β from training (the
    training loop keeps BN in eval mode for freeze), reset re-estimates the running statistics on the target's
    training data. Returns the pretraining's metadata for the run record."""
    ckpt, trained_now = load_or_pretrain(cfg, device)
    state = {k: v for k, v in ckpt["state_dict"].items() if not _is_head(k)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not _is_head(k) for k in missing):
        raise RuntimeError(f"checkpoint {checkpoint_path(cfg)} does not match the model: missing {missing}, "
                           f"unexpected {unexpected}; delete it to pretrain again.")
    mode = cfg.finetune.bn
    if mode in ("freeze_affine", "freeze"):
        for m in batch_norm_layers(model):
            for p in m.parameters():
                p.requires_grad_(False)
    elif mode == "frozen":
        freeze_bn_modules(model)
    elif mode == "reset":
        precise_bn(model, data.train_x, int(cfg.train.batch_size), int(cfg.bn.precise_batches),
                   generator(int(cfg.seed), "finetune", "reset_bn"))
    return {**ckpt["meta"], "checkpoint": checkpoint_path(cfg).name, "trained_now": trained_now}


class FrozenBatchNormAnyDim(nn.Module):
    """torchvision's FrozenBatchNorm2d for (N, C) features too (it broadcasts over (N, C, H, W) only): for the
    BatchNorm1d layers after linear layers and the from-scratch BN, which takes either shape."""

    def __init__(self, frozen2d: nn.Module) -> None:
        super().__init__()
        self.frozen = frozen2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C) or (N, C, H, W)
        return self.frozen(x[:, :, None, None])[:, :, 0, 0] if x.dim() == 2 else self.frozen(x)


def freeze_bn_modules(model: nn.Module) -> int:
    """Replace every batch-norm layer of `model` by torchvision's FrozenBatchNorm2d holding its current statistics and
    affine (γ = 1, β = 0 where the layer has none) as buffers; returns how many were replaced."""
    from torchvision.ops import FrozenBatchNorm2d

    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, BATCH_NORM_TYPES):
                continue
            frozen = FrozenBatchNorm2d(child.num_features, eps=float(child.eps))
            with torch.no_grad():
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
                if child.weight is not None:
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
            frozen = frozen.to(child.running_mean.device)
            setattr(parent, name, frozen if isinstance(child, nn.BatchNorm2d) else FrozenBatchNormAnyDim(frozen))
            replaced += 1
    return replaced


def trainable_parameters(model: nn.Module) -> List[nn.Parameter]:
    """The parameters the optimizer updates (a frozen γ, β is not handed to it, so weight decay cannot move it)."""
    return [p for p in model.parameters() if p.requires_grad]
