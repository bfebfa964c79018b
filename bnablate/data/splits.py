"""Train/validation/test splits (fixed, seeded by dataset.split_seed) and per-channel normalization."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Tuple

import torch
from torch import Tensor

from .cache import cached_load
from .registry import DataError, RawData, dataset_spec
from .sources import source_files


@dataclass
class DataSplits:
    name: str
    train_x: Tensor  # (N, C, H, W) float32, normalized with the training split's per-channel mean/std
    train_y: Tensor  # (N,) int64
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    input_shape: Tuple[int, int, int]
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    augment: bool

    def to(self, device) -> "DataSplits":
        moved = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return replace(self, **moved)


def _check_fractions(cfg) -> None:
    if not 0.0 <= float(cfg.val_fraction) < 1.0:
        raise DataError(f"dataset.val_fraction must be in [0, 1), got {cfg.val_fraction}.")
    if not 0.0 < float(cfg.test_fraction) < 1.0:
        raise DataError(f"dataset.test_fraction must be in (0, 1), got {cfg.test_fraction}.")


def _split(x: Tensor, y: Tensor, fraction: float, g: torch.Generator):
    """(rest_x, rest_y, part_x, part_y): `fraction` of the rows, drawn with g, form the part."""
    perm = torch.randperm(len(x), generator=g)
    k = int(round(len(x) * fraction))
    part, rest = perm[:k], perm[k:]
    return x[rest], y[rest], x[part], y[part]


def load_raw(cfg) -> RawData:
    spec = dataset_spec(cfg.name)
    if spec.checksummed and not cfg.verify:
        warnings.warn(f"{cfg.name}: checksum verification skipped (dataset.verify=false): loading the files under "
                      f"{cfg.root} as they are; use this only for a re-packed copy you trust.", stacklevel=2)
    if not spec.cached:
        return spec.load(cfg)
    return cached_load(cfg.name, source_files(cfg.name, cfg), str(cfg.cache_dir), bool(cfg.verify),
                       lambda: spec.load(cfg))


def load_data(cfg) -> DataSplits:
    """Load a dataset once into memory as normalized float tensors with a fixed validation split carved from train
    (model selection never looks at test); the same split_seed gives the same split for every run and variant."""
    _check_fractions(cfg)
    spec = dataset_spec(cfg.name)
    raw = load_raw(cfg)
    g = torch.Generator().manual_seed(int(cfg.split_seed))
    train_x, train_y = raw.train_x, raw.train_y
    if raw.test_x is None:
        train_x, train_y, test_x, test_y = _split(train_x, train_y, float(cfg.test_fraction), g)
    else:
        test_x, test_y = raw.test_x, raw.test_y
    train_x, train_y, val_x, val_y = _split(train_x, train_y, float(cfg.val_fraction), g)
    if cfg.train_subset is not None:
        n = int(cfg.train_subset)
        if not 0 < n <= len(train_x):
            raise DataError(f"dataset.train_subset={n} must be between 1 and the {len(train_x)} training images left "
                            f"after the validation split.")
        keep = torch.randperm(len(train_x), generator=g)[:n]
        train_x, train_y = train_x[keep], train_y[keep]
    train_x, val_x, test_x = (t.float() for t in (train_x, val_x, test_x))
    mean = train_x.mean(dim=(0, 2, 3))  # (C,) statistics of the training split only
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-8)

    def norm(t: Tensor) -> Tensor:
        return ((t - mean[None, :, None, None]) / std[None, :, None, None]).contiguous()
    return DataSplits(cfg.name, norm(train_x), train_y.long(), norm(val_x), val_y.long(), norm(test_x), test_y.long(),
                      spec.num_classes, tuple(spec.input_shape), tuple(mean.tolist()), tuple(std.tolist()),
                      bool(cfg.augment))
