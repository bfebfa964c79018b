"""The benchmark's cases and the placement sweep's variants: plain data that `bnablate bench --help` names, read
without importing torch (the measuring code is harness.py and sweep_bench.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import yaml

from ..conf_dir import CONF_DIR


@dataclass(frozen=True)
class Case:
    name: str
    model: str
    dataset: str
    batch_size: int
    variant: str = "bn_pre_act"
    pack: int = 0  # 0: one ordinary run; K ≥ 1: K seeds packed into one pass (samples/s summed over runs)
    # What bnablate is compared with: the tutorial loop, or (packed cases) the same pack computed with vmap
    reference: str = "tutorial"


CASES: List[Case] = [
    Case("lenet-fmnist-b16", "lenet", "fashion_mnist", 16),
    Case("lenet-fmnist-b128", "lenet", "fashion_mnist", 128),
    Case("mlp-cifar10-b10", "mlp", "cifar10", 10),
    Case("mlp-cifar10-b128", "mlp", "cifar10", 128),
    Case("cnn-cifar10-b128", "cnn", "cifar10", 128),
    Case("resnet20-cifar10-b128", "resnet", "cifar10", 128),
    Case("vit-fmnist-b128", "vit", "fashion_mnist", 128, variant="tf_pre_ln"),  # dim 64, depth 4, 49 patches of 4×4
    Case("lenet-fmnist-b16-packed1", "lenet", "fashion_mnist", 16, pack=1),
    Case("lenet-fmnist-b16-packed4", "lenet", "fashion_mnist", 16, pack=4),
    Case("lenet-fmnist-b16-packed8", "lenet", "fashion_mnist", 16, pack=8),
    Case("lenet-fmnist-b16-packed8-vs-vmap", "lenet", "fashion_mnist", 16, pack=8, reference="vmap"),
]


def placement_variants() -> Tuple[str, ...]:
    """The variants of the placement sweep, read from its preset conf/sweep/placement.yaml so that `--whole` times
    the variants `bnablate sweep` runs (the two cannot drift apart)."""
    params = yaml.safe_load((CONF_DIR / "sweep" / "placement.yaml").read_text())["hydra"]["sweeper"]["params"]
    return tuple(v.strip() for v in str(params["variant"]).split(","))  # a plain comma list, as Hydra's sweeper reads it
