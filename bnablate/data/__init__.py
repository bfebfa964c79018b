"""Datasets: registry of loaders, on-disk cache, fixed splits with normalization, and tensor augmentation."""

from . import sources  # noqa: F401  (registers the built-in datasets)
from . import own  # noqa: F401,I001  (then the user's own: arrays, imagefolder)
from . import tv_sets  # noqa: F401,I001  (and torchvision's other datasets: dataset=torchvision dataset.name=...)
from .augment import augment_batch
from .registry import (DATASETS, DataError, DatasetSpec, RawData, dataset_shape, dataset_spec, fingerprint,
                       register_dataset)
from .sources import cifar10_class
from .splits import DataSplits, class_count, load_data, load_raw, selected_classes

__all__ = ["DATASETS", "DataError", "DataSplits", "DatasetSpec", "RawData", "augment_batch", "cifar10_class",
           "class_count", "dataset_shape", "dataset_spec", "fingerprint", "load_data", "load_raw", "register_dataset",
           "selected_classes"]
