"""`dataset=torchvision dataset.name=NAME`: a thin adapter over torchvision's dataset classes (CIFAR-100, SVHN, KMNIST,
EMNIST, STL-10, USPS) for files already on disk under dataset.root, in torchvision's layout. Each is loaded by its own
torchvision class (the file formats are theirs), turned into the (N, C, H, W) tensors every bnablate dataset gives;
the files are checked against torchvision's md5 list where torchvision keeps one, unless dataset.verify=false."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

from .registry import DataError, RawData, register_dataset
from .sources import MNIST_FILES, _load_torchvision, checked_cifar

EMNIST_SPLITS = {"byclass": 62, "bymerge": 47, "balanced": 47, "letters": 27, "digits": 10, "mnist": 10}  # letters:
# labels 1..26 (torchvision keeps index 0 as 'N/A'), so 27 outputs


@dataclass(frozen=True)
class TVSet:
    cls: str  # the torchvision.datasets class
    title: str  # for messages
    folder: str  # under dataset.root, where its files live ('' = dataset.root itself)
    files: Callable[[object], List[str]]  # (DatasetConfig) -> the files that must be there
    input_shape: Tuple[int, int, int]
    classes: Callable[[object], int]  # (DatasetConfig or None for the defaults) -> class count
    args: Callable[[object, bool], Dict[str, object]]  # (DatasetConfig, train) -> the class's own split arguments
    checksummed: bool  # torchvision checks these files' md5 when it loads them


def _fixed(n: int) -> Callable[[object], int]:
    return lambda cfg: n


def _train_flag(cfg, train: bool) -> Dict[str, object]:
    return {"train": train}


def _split_name(cfg, train: bool) -> Dict[str, object]:
    return {"split": "train" if train else "test"}


def _split_of(cfg):
    return getattr(cfg, "split", None)  # a key of dataset=torchvision's schema only


def _emnist_split(cfg) -> str:
    split = str(_split_of(cfg)) if _split_of(cfg) is not None else "balanced"
    if split not in EMNIST_SPLITS:
        raise DataError(f"dataset.split={split} is not an EMNIST split; choose one of {', '.join(EMNIST_SPLITS)}.")
    return split


TV_SETS = {
    "cifar100": TVSet("CIFAR100", "CIFAR-100", "cifar-100-python", lambda cfg: ["train", "test", "meta"], (3, 32, 32),
                      _fixed(100), _train_flag, True),
    "svhn": TVSet("SVHN", "SVHN", "", lambda cfg: ["train_32x32.mat", "test_32x32.mat"], (3, 32, 32), _fixed(10),
                  _split_name, True),
    "kmnist": TVSet("KMNIST", "KMNIST", "KMNIST/raw", lambda cfg: MNIST_FILES, (1, 28, 28), _fixed(10), _train_flag,
                    False),
    "emnist": TVSet("EMNIST", "EMNIST", "EMNIST/raw",
                    lambda cfg: [f"emnist-{_emnist_split(cfg)}-{part}" for part in
                                 ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "test-images-idx3-ubyte",
                                  "test-labels-idx1-ubyte")],
                    (1, 28, 28), lambda cfg: EMNIST_SPLITS[_emnist_split(cfg)],
                    lambda cfg, train: {"split": _emnist_split(cfg), "train": train}, False),
    "stl10": TVSet("STL10", "STL-10", "stl10_binary",
                   lambda cfg: ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "class_names.txt"],
                   (3, 96, 96), _fixed(10), _split_name, True),
    "usps": TVSet("USPS", "USPS", "", lambda cfg: ["usps.bz2", "usps.t.bz2"], (1, 16, 16), _fixed(10), _train_flag,
                  False),
}


def _checked(tv: TVSet, verify: bool):
    """The torchvision class, with a checksum failure that names the files and the fix (dataset.verify=false for a
    deliberately re-packed copy, which skips the md5 check: the files' presence was checked before loading). The
    CIFAR family is sources.checked_cifar, CIFAR-10's own (it also checks the meta file's md5, separately)."""
    import torchvision.datasets

    base = getattr(torchvision.datasets, tv.cls)
    if not tv.checksummed:
        return base
    if issubclass(base, torchvision.datasets.CIFAR10):
        return checked_cifar(base, tv.title, verify)

    class Checked(base):
        def _check_integrity(self) -> bool:
            if not verify:
                return True
            if super()._check_integrity():
                return True
            raise DataError(f"{tv.title} checksum mismatch under {self.root}: its files differ from torchvision's md5 "
                            f"list. If this is a deliberately re-packed or mirrored copy of the same images, load it "
                            f"with dataset.verify=false; otherwise delete the files and download them again.")

    Checked.__name__ = f"Checked{base.__name__}"
    return Checked


def _nchw(x) -> torch.Tensor:
    """torchvision keeps images as (N, H, W) tensors (MNIST family), (N, H, W, C) numpy (CIFAR) or (N, C, H, W)
    numpy (SVHN, STL-10); every bnablate dataset gives (N, C, H, W)."""
    x = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    if x.dim() == 3:
        return x.unsqueeze(1).contiguous()
    if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        return x.permute(0, 3, 1, 2).contiguous()
    return x.contiguous()


def _labels(ds) -> torch.Tensor:
    y = getattr(ds, "targets", None)
    y = getattr(ds, "labels", None) if y is None else y
    return torch.as_tensor(np.asarray(y), dtype=torch.long)


def _loader(name: str, tv: TVSet):
    def load(cfg) -> RawData:
        if _split_of(cfg) is not None and name != "emnist":
            raise DataError(f"dataset.split is EMNIST's (byclass, balanced, letters, ...); {name} has none: remove it.")
        cls = _checked(tv, bool(cfg.verify))

        def make(root, train=True, download=False):  # what sources._load_torchvision calls
            return cls(root, download=download, **tv.args(cfg, train))
        train, test = _load_torchvision(make, tv.title, tv.folder, tv.files(cfg), cfg, lambda path: None)
        return RawData(_nchw(train.data), _labels(train), _nchw(test.data), _labels(test))
    return load


def _shape_per_config(tv: TVSet):
    return lambda cfg: (tv.input_shape, tv.classes(cfg))


for _name, _tv in TV_SETS.items():
    # EMNIST's class count follows dataset.split, so it is read per config; the others' shapes are fixed
    register_dataset(_name, f"{_tv.title} via torchvision (dataset=torchvision dataset.name={_name}; files under "
                     f"dataset.root)", _tv.input_shape, _tv.classes(None), has_test_split=True,
                     checksummed=_tv.checksummed,
                     shape=_shape_per_config(_tv) if _name == "emnist" else None)(_loader(_name, _tv))
