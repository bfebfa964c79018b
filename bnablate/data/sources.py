"""Dataset loaders: scikit-learn's digits, a synthetic set for tests, and MNIST/Fashion-MNIST/CIFAR-10 via torchvision."""

from __future__ import annotations

import math
import os
import pickle
import struct
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch

from .registry import DataError, RawData, register_dataset

Diagnose = Callable[[Path], Optional[str]]  # why one source file is unreadable, or None

ROOT_HINT = ("set dataset.root=/path/to/data or the environment variable BNABLATE_DATA_ROOT to the folder that holds "
             "it (torchvision's layout)")


@register_dataset("digits", "scikit-learn's bundled 8×8 handwritten digits (1,797 real images, no download)", (1, 8, 8), 10,
                  has_test_split=False)
def digits(cfg) -> RawData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32)).unsqueeze(1)  # (1797, 1, 8, 8), values 0..16
    return RawData(x, torch.from_numpy(d.target.astype(np.int64)))


@register_dataset("synthetic", "tiny generated 3×8×8, 4-class data for tests (class patterns + noise)", (3, 8, 8), 4,
                  has_test_split=False)
def synthetic(cfg) -> RawData:
    g = torch.Generator().manual_seed(1234)
    n, classes = 400, 4
    prototypes = torch.randn(classes, 3, 8, 8, generator=g)  # one smooth-ish pattern per class
    y = torch.arange(n) % classes
    x = prototypes[y] + 1.5 * torch.randn(n, 3, 8, 8, generator=g)
    return RawData(x, y)


def _expected(root: Path, folder: str, files: List[str]) -> str:
    return ", ".join(str(root / folder / f) for f in files)


def _missing_message(name: str, root: Path, folder: str, files: List[str], tried_download: bool) -> str:
    why = "and downloading them failed (no internet?)" if tried_download else "and dataset.download=false"
    return (f"{name} is not under {root}: expected {_expected(root, folder, files)} {why}. Fix: {ROOT_HINT}, or "
            f"allow torchvision to download it (dataset.download=true with internet access).")


def _unreadable_message(name: str, root: Path, folder: str, files: List[str], diagnose: Diagnose,
                        e: Exception) -> str:
    """Name the damaged file(s) when `diagnose(path) -> reason | None` finds them, else the folder and the error."""
    bad = [f"{root / folder / f} ({why})" for f in files if (why := diagnose(root / folder / f))]
    what = "; ".join(bad) if bad else f"a file under {root / folder} ({type(e).__name__}: {e})"
    return (f"{name} could not be read: {what}. The file is truncated or corrupted: delete it and download it "
            f"again (dataset.download=true with internet access), or point dataset.root at an intact copy.")


def _load_torchvision(cls, name: str, folder: str, files: List[str], cfg, diagnose: Diagnose):
    root = Path(os.path.expanduser(str(cfg.root))).absolute()
    present = all((root / folder / f).is_file() for f in files)
    if not present:
        if not cfg.download:
            raise DataError(_missing_message(name, root, folder, files, False))
        try:
            return cls(str(root), train=True, download=True), cls(str(root), train=False, download=True)
        except Exception as e:  # noqa: BLE001  (offline: URLError, RuntimeError, ...)
            detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise DataError(_missing_message(name, root, folder, files, True) + f" ({type(e).__name__}: {detail})") from None
    try:
        return cls(str(root), train=True), cls(str(root), train=False)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001  (truncated or corrupted files)
        raise DataError(_unreadable_message(name, root, folder, files, diagnose, e)) from None


MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _idx_problem(path: Path) -> Optional[str]:
    """Why an uncompressed IDX file is unreadable, or None. Layout: 0x00 0x00, type 0x08 (uint8), ndim, then ndim
    big-endian uint32 sizes, then prod(sizes) bytes — so the header fixes the file size."""
    with open(path, "rb") as f:
        magic = f.read(4)
        if len(magic) < 4 or magic[:3] != b"\x00\x00\x08":
            return "not a uint8 IDX file: bad magic number"
        head = f.read(4 * magic[3])
    if len(head) < 4 * magic[3]:
        return "header cut short"
    expected = 4 + len(head) + math.prod(struct.unpack(f">{magic[3]}I", head))
    size = path.stat().st_size
    return None if size == expected else f"{size} bytes where its header promises {expected}"


def _mnist_like(cls, name: str, folder: str, cfg) -> RawData:
    train, test = _load_torchvision(cls, name, f"{folder}/raw", MNIST_FILES, cfg, _idx_problem)
    return RawData(train.data.unsqueeze(1).contiguous(), train.targets.long(),  # (N, 1, 28, 28) uint8
                   test.data.unsqueeze(1).contiguous(), test.targets.long())


@register_dataset("mnist", "MNIST handwritten digits, 60k train + 10k test (torchvision)", (1, 28, 28), 10,
                  has_test_split=True, cached=True)
def mnist(cfg) -> RawData:
    from torchvision.datasets import MNIST

    return _mnist_like(MNIST, "MNIST", "MNIST", cfg)


@register_dataset("fashion_mnist", "Fashion-MNIST clothing images, 60k train + 10k test (torchvision)", (1, 28, 28), 10,
                  has_test_split=True, cached=True)
def fashion_mnist(cfg) -> RawData:
    from torchvision.datasets import FashionMNIST

    return _mnist_like(FashionMNIST, "Fashion-MNIST", "FashionMNIST", cfg)


CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def _pickle_problem(path: Path) -> Optional[str]:
    """Why a CIFAR-10 pickle is unreadable, or None (only called after a load failed, so the cost does not matter)."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="latin1")
    except Exception as e:  # noqa: BLE001  (EOFError, UnpicklingError, ... on a damaged file)
        return f"{type(e).__name__}: {e}"
    data = np.asarray(d.get("data")) if isinstance(d, dict) else None
    if path.name != "batches.meta" and (data is None or data.ndim != 2 or data.shape[1] != 3072):
        return "no (N, 3072) 'data' array"  # rows are 1024 R, 1024 G, 1024 B values
    return None


def cifar10_class(verify: bool):
    """torchvision's CIFAR10 class, with a checksum failure that names the files and the fix and, for verify=False,
    no md5 check (for deliberately re-packed copies); the loader here and the benchmark's tutorial loop share it."""
    from torchvision.datasets import CIFAR10

    return checked_cifar(CIFAR10, "CIFAR-10", verify)


def checked_cifar(base, title: str, verify: bool):
    """A torchvision CIFAR-family class (CIFAR10, CIFAR100) whose checksum failure names the files and the fix and
    which, for verify=False, skips the md5 checks of the data and meta files (for deliberately re-packed copies)."""
    from torchvision.datasets.utils import check_integrity

    class Checked(base):
        """The CIFAR class, its checksum failure naming the files and the fix, its md5 checks skippable on purpose."""

        def _check_integrity(self) -> bool:
            root = Path(self.root) / self.base_folder
            listed = self.train_list + self.test_list + [[self.meta["filename"], self.meta["md5"]]]
            if not all((root / f).is_file() for f, _ in listed):
                return False
            if not verify:
                return True
            bad = [f for f, md5 in listed if not check_integrity(str(root / f), md5)]
            if bad:
                raise DataError(
                    f"{title} checksum mismatch in {root}: {', '.join(bad)} differ from torchvision's md5 list. If "
                    "this is a deliberately re-packed or mirrored copy of the same images, load it with "
                    "dataset.verify=false; otherwise delete the folder and download it again.")
            return True

        def _load_meta(self) -> None:
            if verify:
                return super()._load_meta()
            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]  # same as torchvision, minus md5
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    Checked.__name__ = f"Checked{base.__name__}"
    return Checked


@register_dataset("cifar10", "CIFAR-10 32×32 colour images, 50k train + 10k test (torchvision)", (3, 32, 32), 10,
                  has_test_split=True, cached=True, checksummed=True)
def cifar10(cfg) -> RawData:
    train, test = _load_torchvision(cifar10_class(bool(cfg.verify)), "CIFAR-10", CIFAR_FOLDER, CIFAR_FILES, cfg,
                                    _pickle_problem)

    def nchw(ds):  # torchvision keeps CIFAR as (N, 32, 32, 3) uint8 numpy
        return torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    return RawData(nchw(train), torch.tensor(train.targets, dtype=torch.long),
                   nchw(test), torch.tensor(test.targets, dtype=torch.long))


def source_files(name: str, cfg) -> List[Path]:
    """The on-disk files a cached dataset is decoded from (their sizes and mtimes key the cache)."""
    root = Path(os.path.expanduser(str(cfg.root)))
    folders = {"mnist": ("MNIST/raw", MNIST_FILES), "fashion_mnist": ("FashionMNIST/raw", MNIST_FILES),
               "cifar10": (CIFAR_FOLDER, CIFAR_FILES)}
    folder, files = folders[name]
    return [root / folder / f for f in files]
