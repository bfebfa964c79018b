"""Dataset registry: name → DatasetSpec (static shape/classes, plus a loader of raw tensors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

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


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(name: str, description: str, input_shape: Tuple[int, int, int], num_classes: int,
                     has_test_split: bool, cached: bool = False,
                     checksummed: bool = False) -> Callable[[Callable[..., RawData]], Callable[..., RawData]]:
    """Decorator: register a loader `fn(cfg) -> RawData` as a DatasetSpec under `name`."""
    def deco(fn: Callable[..., RawData]) -> Callable[..., RawData]:
        spec = DatasetSpec(name, description, input_shape, num_classes, has_test_split, fn, cached, checksummed)
        DATASETS.register(name, description)(spec)
        return fn
    return deco


def dataset_spec(name: str) -> DatasetSpec:
    """The spec registered as `name`; UnknownNameError (suggesting the closest name) otherwise."""
    return DATASETS.get(name)
