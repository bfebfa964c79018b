"""Datasets of random images written in torchvision's on-disk formats (IDX for MNIST-like, pickled batches for
CIFAR-10) and in the user's own formats (an .npz of arrays, an ImageFolder of PNGs): test fixtures, and `bnablate
bench --synthetic` inputs where the real files are absent (a GPU machine)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """IDX3: magic 0x00000803, then N, rows, cols as big-endian int32, then uint8 pixels."""
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x0803, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """IDX1: magic 0x00000801, then N as big-endian int32, then uint8 labels."""
    path.write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


def write_mnist_like(root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return raw


def write_cifar10(root: Path, per_batch: int = 10, n_test: int = 10, seed: int = 0) -> Path:
    """data_batch_1..5 and test_batch: dicts with 'data' (N, 3072) uint8 rows (R, G, B planes) and 'labels'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        batch = {"batch_label": name, "labels": [int(i % 10) for i in range(n)],
                 "data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 "filenames": [f"img{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch,
                     "num_vis": 3072}, f)
    return folder


def write_benchmark_files(root: Path, n_train: int, n_test: int = 1000, seed: int = 0) -> Path:
    """MNIST, Fashion-MNIST and CIFAR-10 of random images (n_train training images each) under root, for throughput
    benchmarks on machines without the real files. Labels cycle through the classes; nothing here is learnable."""
    write_mnist_like(root, "MNIST", n_train, n_test, seed)
    write_mnist_like(root, "FashionMNIST", n_train, n_test, seed)
    write_cifar10(root, per_batch=max(1, n_train // 5), n_test=n_test, seed=seed)
    return root


def _learnable(n: int, shape, classes: int, rng: np.random.Generator):
    """(N, *shape) uint8 images of `classes` noisy class patterns and their (N,) int64 labels: a model can learn them."""
    prototypes = rng.integers(0, 256, size=(classes, *shape))
    y = np.arange(n) % classes
    x = np.clip(prototypes[y] + rng.normal(0, 40, size=(n, *shape)), 0, 255).astype(np.uint8)
    return x, y.astype(np.int64)


def write_npz(path: Path, n_train: int = 120, n_test: int = 40, shape=(8, 8, 3), classes: int = 3, n_val: int = 0,
              seed: int = 0) -> Path:
    """An .npz for dataset=arrays: x_train, y_train, x_test, y_test (and x_val, y_val when n_val > 0); images of
    `shape` (NHWC by default, as most tools export them)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test), ("val", n_val)):
        if n:
            arrays[f"x_{split}"], arrays[f"y_{split}"] = _learnable(n, shape, classes, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def write_image_folder(root: Path, classes: int = 3, per_class: int = 20, size=(12, 10), test_per_class: int = 6,
                       mode: str = "RGB", seed: int = 0) -> Path:
    """PNGs in torchvision's ImageFolder layout: root/train/c<k>/<i>.png (and root/test/... when test_per_class > 0,
    else root/c<k>/<i>.png, a single folder). size: (H, W)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = (3,) if mode == "RGB" else ()
    splits = (("train", per_class), ("test", test_per_class)) if test_per_class else (("", per_class),)
    for split, n in splits:
        x, y = _learnable(n * classes, (*size, *channels), classes, rng)
        for i, (img, label) in enumerate(zip(x, y)):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i}.png")  # (H, W) → L, (H, W, 3) → RGB
    return root


def write_cifar100(root: Path, n_train: int = 40, n_test: int = 20, seed: int = 0) -> Path:
    """cifar-100-python/train, test (dicts with 'data' (N, 3072) uint8 rows and 'fine_labels') and meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = [int(i % 100) for i in range(n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), "fine_labels": fine,
                         "coarse_labels": [c // 5 for c in fine], "filenames": [f"img{i}.png" for i in range(n)]}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"fine{i}" for i in range(100)],
                     "coarse_label_names": [f"coarse{i}" for i in range(20)]}, f)
    return folder


def write_svhn(root: Path, n_train: int = 40, n_test: int = 20, seed: int = 0) -> Path:
    """train_32x32.mat and test_32x32.mat as SVHN ships them: X (32, 32, 3, N) uint8, y (N, 1) with digit 0 as 10."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        y = (np.arange(n) % 10).reshape(n, 1)
        savemat(root / f"{name}_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, n)).astype(np.uint8),
                                             "y": np.where(y == 0, 10, y).astype(np.uint8)})
    return root


def write_emnist(root: Path, split: str = "letters", n_train: int = 52, n_test: int = 26, classes: int = 27,
                 first_label: int = 1, seed: int = 0) -> Path:
    """EMNIST/raw/emnist-<split>-{train,test}-{images-idx3,labels-idx1}-ubyte (letters: labels 1..26)."""
    rng = np.random.default_rng(seed)
    raw = root / "EMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("test", n_test)):
        write_idx_images(raw / f"emnist-{split}-{part}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx_labels(raw / f"emnist-{split}-{part}-labels-idx1-ubyte",
                         first_label + np.arange(n) % (classes - first_label))
    return raw
