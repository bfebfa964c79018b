"""Variants that build the same layers for a model (bn_post_pool is bn_post_act in every block without a pool): found
by comparing the built models' module structure, untrained; said by `inspect`, `sweep --dry-run` and the report."""

from __future__ import annotations

import itertools
import warnings
from typing import Any, Dict, Iterable, List, Mapping, Tuple

from omegaconf import OmegaConf

Blocks = Dict[str, str]  # top-level child name → its repr: layer types, order, sizes and options (eps, bias, p)


def is_norm(module: Any) -> bool:
    """A normalization layer, by its class name (BatchNorm2d, GhostBatchNorm, GroupNorm, LayerNorm, RMSNorm, batch
    renorm, DyT): the custom layers of bnablate/layers share no base class with torch's."""
    name = type(module).__name__.lower()
    return "norm" in name or "dyt" in name


def layer_blocks(cfg: Any, variant: Any = None) -> Tuple[Blocks, set]:
    """The model `cfg` resolves to (with `variant` in place of cfg.variant when given), built untrained for its
    dataset's input shape: its blocks' reprs and the names of the blocks holding a normalization layer."""
    from .data import class_count, dataset_shape
    from .models import build_model

    shape, _ = dataset_shape(cfg["dataset"])
    model = build_model(cfg["model"], variant if variant is not None else cfg["variant"], shape,
                        class_count(cfg["dataset"]), 0, bn=cfg.get("bn"))
    with warnings.catch_warnings():  # DyT's repr reads its trainable alpha as a float; torch warns about that
        warnings.simplefilter("ignore", UserWarning)
        blocks = {name: repr(child) for name, child in model.named_children()}
    normed = {name for name, child in model.named_children() if any(is_norm(m) for m in child.modules())}
    return blocks, normed


def same_stack_lines(stacks: Mapping[str, Tuple[Blocks, set]], model: str) -> List[str]:
    """For each pair of variants (label → layer_blocks) of one model: a line when they build the same layers, or
    the same layers in some of their normalized blocks (those blocks compare nothing: e.g. no pool to come after)."""
    lines = []
    for (a, (blocks_a, norm_a)), (b, (blocks_b, norm_b)) in itertools.combinations(stacks.items(), 2):
        if blocks_a == blocks_b:
            lines.append(f"{a} and {b} build the same layer stack for {model}: comparing them compares seeds only.")
            continue
        normed = [n for n in blocks_a if n in norm_a | norm_b]
        same = [n for n in normed if blocks_a.get(n) == blocks_b.get(n)]
        if same and normed and blocks_a.keys() == blocks_b.keys():
            lines.append(f"{a} equals {b} in {len(same)} of {len(normed)} normalized blocks of {model} "
                         f"({', '.join(same)}): only the other blocks differ.")
    return lines


def same_stack_notes(configs: Iterable[Mapping[str, Any]]) -> List[str]:
    """The lines of same_stack_lines for the runs' (or a plan's) configs, per model and dataset, each variant built
    once. A config whose model cannot be built here (its plugin not loaded, its image folder gone) is skipped:
    this is a warning, never a reason to refuse a report."""
    from .variants import config_label

    by_model: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for cfg in configs:
        key = (str(cfg["model"]["name"]), str(cfg["dataset"]["name"]))
        by_model.setdefault(key, {}).setdefault(config_label(cfg), cfg)
    lines = []
    for (model, _dataset), cfgs in by_model.items():
        stacks = {}
        for label, cfg in sorted(cfgs.items()):  # by name: the notes do not depend on the order records are read
            try:
                stacks[label] = layer_blocks(OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg)
            except Exception:  # noqa: BLE001 — see the docstring: an unbuildable model gets no warning, not an error
                continue
        lines += [line for line in same_stack_lines(stacks, model) if line not in lines]
    return lines


def inspect_lines(cfg: Any) -> List[str]:
    """`inspect`: the variant presets that build the same layers as cfg's variant for this model (all of them, or
    some of its normalized blocks)."""
    from .variants import config_label, variant_presets

    own, model = config_label(cfg), str(cfg["model"]["name"])
    mine = layer_blocks(cfg)
    lines = []
    for name, entry in variant_presets().items():
        if name == own:
            continue
        try:
            theirs = layer_blocks(cfg, OmegaConf.create(entry.obj))
        except Exception:  # noqa: BLE001 — a preset this model refuses (a residual variant on lenet) is not a twin
            continue
        lines += same_stack_lines({own: mine, name: theirs}, model)
    return lines
