"""Tiny datasets written in torchvision's on-disk formats (IDX for MNIST-like, pickled batches for CIFAR-10)."""

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


def make_record(overrides, status="ok", val_accs=(0.5, 0.7), test_acc=None, epoch_time=0.5, steps_per_epoch=10):
    """A run record as execute_run writes it, with chosen per-epoch validation accuracies (test = val - 0.01 unless
    test_acc is given for the last epoch)."""
    from bnablate.config import compose_config, to_plain
    from bnablate.results import run_key

    plain = to_plain(compose_config(list(overrides)))
    metrics = []
    for i, a in enumerate(val_accs):
        last = i == len(val_accs) - 1
        metrics.append({"epoch": i + 1, "train_loss": 1.0 / (i + 1), "train_acc": a, "val_loss": 1.0, "val_acc": a,
                        "test_loss": 1.0, "test_acc": test_acc if (last and test_acc is not None) else a - 0.01,
                        "lr": 1e-3, "steps": steps_per_epoch * (i + 1), "epoch_time_s": epoch_time,
                        "samples_per_s": 100.0})
    return {"run_key": run_key(plain), "status": status, "error": "boom" if status == "failed" else None,
            "config": plain, "metrics": [] if status == "failed" else metrics, "n_params": 123,
            "wall_time_s": 1.0, "started_at": "2026-01-01T00:00:00+00:00",
            "finished_at": "2026-01-01T00:00:01+00:00", "provenance": {"device": "cpu"}}
