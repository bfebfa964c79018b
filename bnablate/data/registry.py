"""Dataset registry: name → DatasetSpec (static shape/classes, plus a loader of raw tensors)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from ..registry import Registry


class DataError(RuntimeError):
    """Data that cannot be loaded; the message names the files and the fix."""


@dataclass
class RawData:
    train_x: Tensor  # (N, C, H, W), uint8 or float
    train_y: Tensor  # (N,) int64
    test_x: Optional[Tensor] = None  # None: no official test split (one is carved from train)
    test_y: Optional[Tensor] = None
    val_x: Optional[Tensor] = None  # None: load_data carves validation from train (dataset.val_fraction, split_seed)
    val_y: Optional[Tensor] = None


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    input_shape: Tuple[int, int, int]  # (C, H, W), known without loading anything
    num_classes: int
    has_test_split: bool  # False: the loader returns no test set and load_data carves one (dataset.test_fraction)
    load: Callable[..., RawData]  # (DatasetConfig) -> RawData
    cached: bool = False  # decoded tensors cached on disk (the torchvision datasets)
    checksummed: bool = False  # files checked against torchvision's md5 list unless dataset.verify=false
    # Datasets whose shape and classes depend on the config (the user's own files): (DatasetConfig) -> (input_shape,
    # num_classes), read from the files without decoding every image; input_shape/num_classes above are then only
    # what `bnablate list` shows for the defaults.
    shape: Optional[Callable[..., Tuple[Tuple[int, int, int], int]]] = None
    # Datasets that can stay on disk (data/stream.py): (DatasetConfig) -> RawData whose images are ImageFiles, used
    # when the decoded images would exceed dataset.max_memory_mb.
    stream: Optional[Callable[..., RawData]] = None


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(name: str, description: str, input_shape: Tuple[int, int, int], num_classes: int,
                     has_test_split: bool, cached: bool = False, checksummed: bool = False,
                     shape: Optional[Callable[..., Tuple[Tuple[int, int, int], int]]] = None,
                     stream: Optional[Callable[..., RawData]] = None,
                     ) -> Callable[[Callable[..., RawData]], Callable[..., RawData]]:
    """Decorator: register a loader `fn(cfg) -> RawData` as a DatasetSpec under `name`."""
    def deco(fn: Callable[..., RawData]) -> Callable[..., RawData]:
        spec = DatasetSpec(name, description, input_shape, num_classes, has_test_split, fn, cached, checksummed, shape,
                           stream)
        DATASETS.register(name, description)(spec)
        return fn
    return deco


def dataset_spec(name: str) -> DatasetSpec:
    """The spec registered as `name`; UnknownNameError (suggesting the closest name) otherwise."""
    return DATASETS.get(name)


def dataset_shape(cfg) -> Tuple[Tuple[int, int, int], int]:
    """(input_shape (C, H, W), num_classes) of a dataset config: the spec's own, or read from the user's files."""
    spec = dataset_spec(cfg.name)
    if spec.shape is None:
        return tuple(spec.input_shape), int(spec.num_classes)
    shape, classes = spec.shape(cfg)
    return tuple(int(s) for s in shape), int(classes)


def fingerprint(raw: RawData) -> str:
    """16 hex chars of BLAKE2b over the tensors a run trained and tested on (dtype, shape and bytes of each), so a
    record says which data it saw: the same name over different files gives a different fingerprint. Hashing the
    decoded tensors rather than the files covers every loader, the registered-from-outside ones included; it reads
    each byte once (CIFAR-10's 185 MB in 0.34 s, MNIST's 55 MB in 0.10 s, medians of 3 on this 2-core machine), once
    per loaded dataset."""
    h = hashlib.blake2b(digest_size=8)
    parts: List[Optional[Tensor]] = [raw.train_x, raw.train_y, raw.test_x, raw.test_y]
    parts += [raw.val_x, raw.val_y] if raw.val_x is not None else []
    for t in parts:
        if t is None:
            h.update(b"none")
            continue
        if hasattr(t, "chunks"):  # images streamed from disk (stream.py): the same bytes, decoded a chunk at a time
            h.update(f"{torch.uint8}:{tuple(t.shape)}".encode())
            for chunk in t.chunks():
                h.update(chunk.contiguous().view(-1).numpy())
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy() if t.numel() else b"")
    return h.hexdigest()
