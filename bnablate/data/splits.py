"""Train/validation/test splits (fixed, seeded by dataset.split_seed) and per-channel normalization."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ..registry import check_choice
from ..seeding import generator
from .cache import cached_load
from .registry import DataError, RawData, dataset_shape, dataset_spec, fingerprint
from .sources import source_files
from .stream import ImageFiles, channel_stats


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
    fingerprint: str = ""  # registry.fingerprint of the undivided tensors: which data the runs saw (in each record)

    @property
    def path(self) -> str:
        """How the images reach training: "memory" (decoded tensors) or "stream" (files decoded per batch)."""
        return "stream" if isinstance(self.train_x, ImageFiles) else "memory"

    def to(self, device) -> "DataSplits":
        moved = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return replace(self, **moved)


def _check_fractions(cfg) -> None:
    if not 0.0 <= float(cfg.val_fraction) < 1.0:
        raise DataError(f"dataset.val_fraction must be in [0, 1), got {cfg.val_fraction}.")
    if not 0.0 < float(cfg.test_fraction) < 1.0:
        raise DataError(f"dataset.test_fraction must be in (0, 1), got {cfg.test_fraction}.")
    check_choice("dataset.normalize", cfg.normalize, NORMALIZE, DataError)


def selected_classes(classes, num_classes: int, key: str = "dataset.classes") -> Optional[List[int]]:
    """The class ids a `classes` setting keeps (None: all), checked: distinct ids in [0, num_classes), at least two."""
    if classes is None:
        return None
    ids = [int(c) for c in classes]
    if len(ids) < 2 or len(set(ids)) != len(ids) or not all(0 <= c < num_classes for c in ids):
        raise ValueError(f"{key} must list at least two distinct class ids in 0..{num_classes - 1}, got {list(classes)} "
                         f"(e.g. {key}=[0,1,2,3,4]; null keeps every class).")
    return ids


def class_count(cfg) -> int:
    """Classes the model predicts for a dataset config: len(dataset.classes), else the dataset's own count."""
    _shape, num_classes = dataset_shape(cfg)
    ids = selected_classes(getattr(cfg, "classes", None), num_classes)
    return len(ids) if ids else num_classes


def _keep_classes(x: Tensor, y: Tensor, ids: List[int], num_classes: int):
    """Rows whose label is in `ids`, relabelled by position in `ids` (ids [5, 6, 7] → labels 0, 1, 2)."""
    lookup = torch.full((num_classes,), -1, dtype=torch.long)
    lookup[torch.tensor(ids)] = torch.arange(len(ids))
    new = lookup[y.long()]
    keep = (new >= 0).nonzero().squeeze(1)
    return x.index_select(0, keep), new.index_select(0, keep)


def _split(x: Tensor, y: Tensor, fraction: float, g: torch.Generator):
    """(rest_x, rest_y, part_x, part_y): `fraction` of the rows, drawn with g, form the part."""
    perm = torch.randperm(len(x), generator=g)
    k = int(round(len(x) * fraction))
    part, rest = perm[:k], perm[k:]
    # index_select: about 2× faster than x[rest] on CIFAR's (50000, 3, 32, 32) uint8
    return x.index_select(0, rest), y.index_select(0, rest), x.index_select(0, part), y.index_select(0, part)


NORMALIZE = ("standardize", "unit")


def _normalize(train_x: Tensor, *others: Tensor, mode: str = "standardize"):
    """Float32 contiguous copies of all sets, standardized per channel with the training set's mean and std.
    In place on the fresh copies: on CIFAR-10 (45k×3×32×32 float32 = 550 MB) `(x - m) / s` would allocate two more
    such tensors and take ~15× longer. Images streamed from disk get the statistics to apply per batch instead."""
    if isinstance(train_x, ImageFiles):
        c = train_x.chw[0]
        mean, std = (torch.zeros(c), torch.full((c,), 255.0)) if mode == "unit" else channel_stats(train_x)
        std = std.clamp_min(1e-8)
        return [t.normalized(mean, std) for t in (train_x, *others)], mean, std
    out = [t.to(torch.float32, memory_format=torch.contiguous_format, copy=True) for t in (train_x, *others)]
    if mode == "unit":  # ToTensor-style: uint8 pixels / 255 (other sources: / the training split's maximum)
        top = 255.0 if train_x.dtype == torch.uint8 else float(out[0].max().clamp_min(1e-8))
        for t in out:
            t.div_(top)
        c = out[0].shape[1]
        return out, torch.zeros(c), torch.full((c,), top)
    # (C,) statistics of the training split only. Kept as mean()/std() (not var_mean): the normalized values must stay
    # bit-identical to earlier versions, or recorded runs stop being reproducible.
    mean = out[0].mean(dim=(0, 2, 3))
    std = out[0].std(dim=(0, 2, 3)).clamp_min(1e-8)  # a constant channel maps to 0 instead of NaN
    for t in out:
        t.sub_(mean[None, :, None, None]).div_(std[None, :, None, None])
    return out, mean, std


_WARNED: set = set()


def _mib(raw: RawData) -> float:
    """MiB the decoded images of raw take as float32 (what the in-memory path holds)."""
    parts = [t for t in (raw.train_x, raw.test_x, raw.val_x) if t is not None]
    return sum(len(t) * math.prod(t.shape[1:]) * 4 for t in parts) / 2**20


def load_raw(cfg) -> RawData:
    """The dataset's undivided tensors, through the on-disk cache for the torchvision datasets — or, when its decoded
    images would exceed dataset.max_memory_mb, the streaming loader's view of its files (stream.py)."""
    spec = dataset_spec(cfg.name)
    budget = cfg.max_memory_mb
    if budget is not None and spec.stream is not None:
        files = spec.stream(cfg)  # lists the files, decodes nothing
        if _mib(files) > float(budget):
            return files
    raw = _load_in_memory(cfg, spec)
    if budget is not None and _mib(raw) > float(budget):
        raise DataError(f"{cfg.name}'s decoded images take {_mib(raw):,.0f} MiB, over dataset.max_memory_mb={budget}, "
                        f"and only dataset=imagefolder can stream from disk. Raise dataset.max_memory_mb, or set it "
                        f"to null to load it in memory.")
    return raw


def _load_in_memory(cfg, spec) -> RawData:
    if spec.checksummed and not cfg.verify and (cfg.name, str(cfg.root)) not in _WARNED:
        _WARNED.add((cfg.name, str(cfg.root)))  # once per process and folder, not once per run of a sweep
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
    input_shape, num_classes = dataset_shape(cfg)
    raw = load_raw(cfg)
    data_id = fingerprint(raw)
    g = torch.Generator().manual_seed(int(cfg.split_seed))
    train_x, train_y, test_x, test_y = raw.train_x, raw.train_y, raw.test_x, raw.test_y
    try:
        ids = selected_classes(getattr(cfg, "classes", None), num_classes)
    except ValueError as e:
        raise DataError(str(e)) from None
    val_x, val_y = raw.val_x, raw.val_y
    if ids:  # before any split, so validation and test hold only the kept classes
        train_x, train_y = _keep_classes(train_x, train_y, ids, num_classes)
        if test_x is not None:
            test_x, test_y = _keep_classes(test_x, test_y, ids, num_classes)
        if val_x is not None:
            val_x, val_y = _keep_classes(val_x, val_y, ids, num_classes)
    if test_x is None:
        train_x, train_y, test_x, test_y = _split(train_x, train_y, float(cfg.test_fraction), g)
    if val_x is None:  # a dataset with its own validation split (an .npz's x_val) keeps it; val_fraction is unused
        train_x, train_y, val_x, val_y = _split(train_x, train_y, float(cfg.val_fraction), g)
    if len(train_x) == 0:
        raise DataError(f"{cfg.name}: no training images left after the test and validation splits "
                        f"(test_fraction={cfg.test_fraction}, val_fraction={cfg.val_fraction}); lower them.")
    if cfg.train_subset is not None:
        n = int(cfg.train_subset)
        if not 0 < n <= len(train_x):
            raise DataError(f"dataset.train_subset={n} must be between 1 and the {len(train_x)} training images left "
                            f"after the validation split.")
        keep = torch.randperm(len(train_x), generator=g)[:n]
        train_x, train_y = train_x.index_select(0, keep), train_y.index_select(0, keep)
    if cfg.test_subset is not None:  # its own stream: the same images whatever train_subset is, the rest unmoved
        n = int(cfg.test_subset)
        if not 0 < n <= len(test_x):
            raise DataError(f"dataset.test_subset={n} must be between 1 and the {len(test_x)} test images.")
        keep = torch.randperm(len(test_x), generator=generator(int(cfg.split_seed), "test_subset"))[:n]
        test_x, test_y = test_x.index_select(0, keep), test_y.index_select(0, keep)
    (train_x, val_x, test_x), mean, std = _normalize(train_x, val_x, test_x, mode=str(cfg.normalize))
    return DataSplits(cfg.name, train_x, train_y.long(), val_x, val_y.long(), test_x, test_y.long(),
                      len(ids) if ids else num_classes, input_shape, tuple(mean.tolist()), tuple(std.tolist()),
                      bool(cfg.augment), data_id)
