"""Typed config schemas (registered in Hydra's ConfigStore), the conf/ location, and composition helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

_PKG_DIR = Path(__file__).resolve().parent
# An installed wheel carries conf/ inside the package; a source checkout (editable install) has it beside the package.
CONF_DIR = _PKG_DIR / "conf" if (_PKG_DIR / "conf").is_dir() else _PKG_DIR.parent / "conf"


@dataclass
class DatasetConfig:
    name: str = MISSING
    # Where torchvision's dataset folders live (MNIST/raw, FashionMNIST/raw, cifar-10-batches-py).
    root: str = "${oc.env:BNABLATE_DATA_ROOT,data}"
    # Decoded uint8 tensors are cached here so a second run starts fast.
    cache_dir: str = "${oc.env:BNABLATE_CACHE_DIR,'~/.cache/bnablate'}"
    download: bool = True  # try torchvision's download when the files are absent
    verify: bool = True  # check torchvision's md5 list; false loads a re-packed copy deliberately
    val_fraction: float = 0.1  # carved from the training set with split_seed; model selection uses only this
    test_fraction: float = 0.2  # only for datasets without an official test split (digits, synthetic)
    split_seed: int = 0  # fixed across runs so every run validates on the same images
    augment: bool = False  # random crop (pad 4) + horizontal flip on tensors, per batch
    train_subset: Optional[int] = None  # keep only this many training images (seeded), for quick studies
    target_acc: float = 0.9  # validation accuracy for the report's time-to-target (does not change training)
    # standardize: per channel with the training split's mean/std; unit: pixel values scaled to [0, 1] only (what
    # torchvision's ToTensor gives, as many tutorials feed their models)
    normalize: str = "standardize"
    # Keep only these classes (e.g. [5,6,7,8,9]), relabelled 0..k-1 in this order; null keeps every class.
    classes: Optional[List[int]] = None


@dataclass
class ModelConfig:
    name: str = MISSING
    # pack=auto on a CPU packs this model's runs at train.batch_size ≤ this (0: never); a measured speed hint, not
    # part of the run key (README "Packed training")
    cpu_pack_max_batch: int = 0


@dataclass
class MLPConfig(ModelConfig):
    hidden: List[int] = field(default_factory=lambda: [64, 32])


@dataclass
class LeNetConfig(ModelConfig):
    conv_channels: List[int] = field(default_factory=lambda: [6, 16])
    fc: List[int] = field(default_factory=lambda: [120, 84])


@dataclass
class CNNConfig(ModelConfig):
    channels: List[int] = field(default_factory=lambda: [32, 64, 128])
    convs_per_stage: int = 2
    fc: List[int] = field(default_factory=list)


@dataclass
class VariantConfig:
    norm: str = "batch"  # batch | scratch | layer | group | none
    placement: str = "pre_act"  # pre_act | post_act | post_pool | none
    dropout: str = "none"  # none | norm_then_dropout | dropout_then_norm
    dropout_p: float = 0.5
    bias: str = "auto"  # on | off | auto (off exactly when a norm directly follows the affine layer)
    activation: str = "relu"
    groups: int = 8  # GroupNorm groups (channels must be divisible by it)
    description: str = ""  # shown by `bnablate list variants`; not part of the run key


@dataclass
class BNConfig:
    """How every batch-norm layer is built (momentum, eps, affine reach GroupNorm/LayerNorm as eps and affine) and
    which statistics evaluation normalizes with."""
    # running (eval()) | batch (train() under no_grad: the mistake) | precise (PreciseBN) | precise_nodrop (PreciseBN
    # with dropout off: the variance-shift remedy)
    eval_stats: str = "running"
    precise_batches: int = 200  # training batches PreciseBN averages over (fvcore's default); also finetune.bn=reset
    # PyTorch convention: running = (1 - momentum) · running + momentum · batch; null = cumulative average.
    # Keras/TF's momentum is the other weight: Keras 0.99 (its default) = PyTorch 0.01; PyTorch's default is 0.1.
    momentum: Optional[float] = 0.1
    eps: float = 1e-5
    affine: bool = True  # learned per-channel scale γ and shift β


@dataclass
class FinetuneConfig:
    """Pretrain on `source`, then fine-tune on `dataset` with the run's train/optim settings (train.epochs,
    train.batch_size are the fine-tuning ones) and BN handled as `bn` says."""
    source: Optional[str] = None  # a conf/dataset name (mnist, cifar10, ...); null = no fine-tuning
    source_classes: Optional[List[int]] = None  # like dataset.classes, for the source
    source_subset: Optional[int] = None  # like dataset.train_subset, for the source
    source_epochs: int = 3
    source_batch_size: int = 64
    bn: str = "train"  # train | freeze_affine | freeze | reset
    # Pretrained weights are saved here, keyed by a hash of the pretraining config, and reused by every run that
    # needs the same pretraining (fine-tune modes, batch sizes, eval modes of one seed).
    checkpoint_dir: str = "${out_dir}/checkpoints"


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | sgd
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    weight_decay: float = 0.0
    schedule: str = "none"  # none | cosine | step (stepped once per epoch)
    step_size: int = 10  # epochs between decays for schedule=step
    gamma: float = 0.1  # decay factor for schedule=step
    # Batch-size scaling of lr (for batch-size studies): the optimizer gets lr × (batch_size / ref_batch_size) for
    # `linear` (Goyal et al. 2017), lr × sqrt(batch_size / ref_batch_size) for `sqrt`, lr unchanged for `none`.
    batch_scaling: str = "none"
    ref_batch_size: int = 64
    fused: bool = False  # torch's fused optimizer kernels instead of foreach: faster, last-digit different numbers


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1024  # evaluation only; does not change results
    compile: bool = False  # torch.compile the model (execution option: same maths, other kernels; see README)
    compile_mode: str = "default"  # default | reduce-overhead (CUDA graphs) | max-autotune | max-autotune-no-cudagraphs
    channels_last: bool = False  # NHWC memory layout for conv models and their inputs (same maths, other kernels)
    # Numerics (part of the run key): fp32 | bf16 (autocast of forward passes; parameters and optimizer stay FP32)
    precision: str = "fp32"
    tf32: bool = False  # CUDA only: TF32 tensor-core matmuls/convolutions (~1e-3 relative error)
    deterministic: bool = True  # CUDA only: bitwise-repeatable kernels (cuDNN autotuning off); false may be faster


@dataclass
class SweepConfig:
    name: str = "placement"
    description: str = ""
    # Defaults of the sweep's report (also of `bnablate report` on its folder; its options override them):
    baseline: str = "no_bn"  # the variant every other variant is compared with, or COLUMN=VALUE (finetune.bn=train)
    pivot: Optional[str] = None  # a factor to tabulate and plot the metric against (lr, batch_size, ...)
    trained_above: Optional[float] = None  # with pivot: the largest value whose mean metric reaches this
    per_epoch: List[str] = field(default_factory=list)  # per-epoch metrics to tabulate (train_loss, test_acc, ...)


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    variant: VariantConfig = MISSING
    optim: OptimConfig = MISSING
    sweep: SweepConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    bn: BNConfig = field(default_factory=BNConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present, else CPU) | cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    # Sweeps train runs that differ only in seed (and lr) as packs of up to pack_size in one pass. auto: on CUDA, and
    # on a CPU at train.batch_size ≤ model.cpu_pack_max_batch (where packing measured faster; README), true: always,
    # false: never.
    pack: str = "auto"
    # How a pack computes: grouped (grouped convs, batched matmuls, wide norms), vmap (torch.func), auto (grouped
    # where every layer has a grouped form, else vmap). Same numbers to float tolerance; grouped measured faster.
    pack_impl: str = "auto"
    # auto: as many runs as fit in 80 % of the GPU's free memory (a one-step probe measures one run's share; at most
    # 64), 8 on a CPU; or an integer ≥ 1.
    pack_size: str = "auto"
    out_dir: str = "runs/${sweep.name}"


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="dataset", name="base_dataset", node=DatasetConfig)
    cs.store(group="model", name="base_mlp", node=MLPConfig)
    cs.store(group="model", name="base_lenet", node=LeNetConfig)
    cs.store(group="model", name="base_cnn", node=CNNConfig)
    cs.store(group="variant", name="base_variant", node=VariantConfig)
    cs.store(group="optim", name="base_optim", node=OptimConfig)
    cs.store(group="sweep", name="base_sweep", node=SweepConfig)


register_configs()

# Keys that say where things live or how fast they run, not what is computed: excluded from the run key.
NON_RESULT_KEYS = ("out_dir", "threads", "device", "sweep", "pack", "pack_size", "pack_impl", "dataset.root",
                   "dataset.cache_dir", "dataset.download",
                   "dataset.verify", "dataset.target_acc", "variant.description", "train.eval_batch_size",
                   "train.compile", "train.compile_mode", "train.channels_last", "train.deterministic",
                   "model.cpu_pack_max_batch",
                   "finetune.checkpoint_dir")


# Keys added after the first release, with the value that reproduces the earlier behaviour: at that value a key is
# left out of the run key, so runs recorded before it existed keep their keys (a rerun still skips them).
NEUTRAL_VALUES = {"optim.batch_scaling": "none", "optim.ref_batch_size": 64, "optim.fused": False,
                  "dataset.normalize": "standardize", "train.precision": "fp32", "train.tf32": False,
                  "dataset.classes": None, "bn.eval_stats": "running", "bn.precise_batches": 200, "bn.momentum": 0.1,
                  "bn.eps": 1e-5, "bn.affine": True, "finetune.source": None, "finetune.source_classes": None,
                  "finetune.source_subset": None, "finetune.source_epochs": 3, "finetune.source_batch_size": 64,
                  "finetune.bn": "train"}


def compose_config(overrides: Optional[List[str]] = None) -> DictConfig:
    """Compose conf/config.yaml with Hydra overrides, exactly as `bnablate run` does."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides or []))


def to_plain(cfg: DictConfig) -> Dict[str, Any]:
    """Resolved config as plain JSON-able dicts (the form stored in run records)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
