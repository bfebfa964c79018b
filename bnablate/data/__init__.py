"""Datasets: registry of loaders, on-disk cache, fixed splits with normalization, and tensor augmentation."""

from . import sources  # noqa: F401  (registers the datasets)
from .augment import augment_batch
from .registry import DATASETS, DataError, DatasetSpec, RawData, dataset_spec, register_dataset
from .sources import cifar10_class
from .splits import DataSplits, class_count, load_data, load_raw, selected_classes

__all__ = ["DATASETS", "DataError", "DataSplits", "DatasetSpec", "RawData", "augment_batch", "cifar10_class",
           "class_count", "dataset_spec", "load_data", "load_raw", "register_dataset", "selected_classes"]
