"""The reference the benchmark compares against: the tutorial-style loop (torchvision dataset → ToTensor per sample →
DataLoader with 2 workers → .to(device) per batch), written in plain PyTorch as courses and forum posts write it."""

from __future__ import annotations

import os
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..data import cifar10_class


def tutorial_dataset(dataset_cfg, train: bool = True):
    """The torchvision dataset (training or test split) with per-sample ToTensor, as a tutorial builds it."""
    from torchvision import datasets, transforms

    root = os.path.expanduser(str(dataset_cfg.root))
    tf = transforms.ToTensor()
    if dataset_cfg.name == "fashion_mnist":
        return datasets.FashionMNIST(root, train=train, transform=tf)
    if dataset_cfg.name == "mnist":
        return datasets.MNIST(root, train=train, transform=tf)
    if dataset_cfg.name == "cifar10":  # torchvision's CIFAR10, with the md5 check made optional for re-packed copies
        return cifar10_class(bool(dataset_cfg.verify))(root, train=train, transform=tf)
    raise ValueError(f"the tutorial loop has no torchvision dataset for '{dataset_cfg.name}'")


def tutorial_batches(dataset, batch_size: int, workers: int = 2) -> Iterator:
    """Endless shuffled batches from a DataLoader with `workers` worker processes (kept alive between epochs)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0)
    while True:
        yield from loader


def tutorial_steps(model: nn.Module, opt: torch.optim.Optimizer, batches: Iterator, steps: int,
                   device: torch.device) -> None:
    """`steps` optimizer steps of the plain loop."""
    model.train()
    for _ in range(steps):
        x, y = next(batches)
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
