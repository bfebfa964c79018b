"""Typed config schemas (registered in Hydra's ConfigStore), the conf/ location, and composition helpers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from .conf_dir import CONF_DIR
from .keys import KeyLists, Role, option
from .plugins import load_plugins, search_path_override


R, E, L, B = Role.RESULT, Role.EXECUTION, Role.LOCATION, Role.LABEL


@dataclass
class DatasetConfig:
    name: str = option(MISSING, R, "the dataset (conf/dataset; `bnablate list datasets`)")
    root: str = option("${oc.env:BNABLATE_DATA_ROOT,data}", L,
                       "where torchvision's dataset folders live (MNIST/raw, FashionMNIST/raw, cifar-10-batches-py)")
    cache_dir: str = option("${oc.env:BNABLATE_CACHE_DIR,'~/.cache/bnablate'}", L,
                            "decoded uint8 tensors are cached here so a second run starts fast")
    download: bool = option(True, E, "try torchvision's download when the files are absent")
    verify: bool = option(True, E, "check torchvision's md5 list; false loads a re-packed copy deliberately")
    val_fraction: float = option(0.1, R, "carved from the training set with split_seed; model selection uses only "
                                         "this split")
    test_fraction: float = option(0.2, R, "only for datasets without an official test split (digits, synthetic)")
    split_seed: int = option(0, R, "fixed across runs so every run validates on the same images")
    augment: bool = option(False, R, "random crop (pad 4) + horizontal flip on tensors, per batch")
    train_subset: Optional[int] = option(None, R, "keep only this many training images (seeded), for quick studies")
    test_subset: Optional[int] = option(None, R, "keep only this many test images (seeded by split_seed: the same "
                                                 "ones in every run), when evaluating the full test set every epoch "
                                                 "would cost more than training; null keeps all", neutral=None)
    target_acc: float = option(0.9, B, "validation accuracy for the report's time-to-target (does not change "
                                       "training; each conf/dataset file sets its own)", table=True)
    normalize: str = option("standardize", R,
                            "standardize: per channel with the training split's mean/std; unit: pixel values scaled "
                            "to [0, 1] only (what torchvision's ToTensor gives, as many tutorials feed their models)",
                            neutral="standardize")
    classes: Optional[List[int]] = option(None, R, "keep only these classes (e.g. [5,6,7,8,9]), relabelled 0..k-1 in "
                                                   "this order; null keeps every class", neutral=None)
    max_memory_mb: Optional[float] = option(None, E, "memory budget of the decoded (float32) images in MiB: a dataset "
                                                     "over it streams from disk through a DataLoader (imagefolder; "
                                                     "others are refused); null: always in memory")
    workers: int = option(2, E, "DataLoader worker processes that decode ahead on the streaming path")


@dataclass
class FilesDatasetConfig(DatasetConfig):
    """The user's own files (bnablate/data/own.py): dataset.path is part of the run key, and each record's data
    fingerprint says which bytes a run saw."""
    path: Optional[str] = option(None, R, "your data: the .npz file (dataset=arrays) or the image folder "
                                          "(dataset=imagefolder)")


@dataclass
class ArraysDatasetConfig(FilesDatasetConfig):
    layout: str = option("auto", R, "arrays: NCHW | NHWC | auto (channels are the axis of size 1, 3 or 4)")
    num_classes: Optional[int] = option(None, R, "arrays: the number of classes; null: the largest label + 1")


@dataclass
class ImageFolderDatasetConfig(FilesDatasetConfig):
    image_size: Optional[int] = option(None, R, "imagefolder: resize every image to N×N (antialiased); null: every "
                                                "image must already share the first one's size")
    channels: Optional[int] = option(None, R, "imagefolder: 1 (grayscale) or 3 (RGB); null: from the first image")


@dataclass
class TorchvisionDatasetConfig(DatasetConfig):
    """dataset=torchvision dataset.name=NAME: torchvision's other datasets (bnablate/data/tv_sets.py)."""
    split: Optional[str] = option(None, R, "torchvision: EMNIST's split (byclass, bymerge, balanced, letters, digits, "
                                           "mnist); null: balanced (the other datasets have none)")


@dataclass
class ModelConfig:
    name: str = option(MISSING, R, "the model (conf/model; `bnablate list models`)")
    cpu_pack_max_batch: int = option(0, E, "pack=auto on a CPU packs this model's runs at train.batch_size ≤ this "
                                           "(0: never); a measured speed hint (docs/sweeps.md), set per conf/model file",
                                     table=False)
    init: str = option("torch", R, "every model: how its Conv2d/Linear layers (and a ViT's position and class tokens) "
                                   "start, each from its own seed-keyed generator, so variants stay paired: torch "
                                   "(PyTorch's default) | he (torchvision's ResNet: convs kaiming_normal fan_out) | "
                                   "xavier (xavier_uniform, biases 0) | trunc_normal (timm's ViT: Linear std 0.02); "
                                   "docs/training.md says what each does to every layer", neutral="torch")


@dataclass
class MLPConfig(ModelConfig):
    hidden: List[int] = option([64, 32], R, "mlp: widths of the hidden layers")


@dataclass
class LeNetConfig(ModelConfig):
    conv_channels: List[int] = option([6, 16], R, "lenet: output channels of the two 5×5 convolutions")
    fc: List[int] = option([120, 84], R, "lenet/cnn: widths of the hidden fully connected layers before the "
                                         "classifier")
    pool: str = option("avg", R, "lenet: the 2×2 pooling after each conv: avg (d2l's LeNet) | max (the max-pool "
                                 "LeNet of many tutorials)", neutral="avg")
    padding: Optional[int] = option(None, R, "lenet: zero padding of the first 5×5 conv; null: 2 on inputs under 32 "
                                             "px (d2l: 28×28 → 16×5×5 = 400 features), 0 on 32×32; 0 on 28×28 is the "
                                             "classic geometry (→ 16×4×4 = 256 features)", neutral=None)


@dataclass
class CNNConfig(ModelConfig):
    channels: List[int] = option([32, 64, 128], R, "cnn: channels of each stage (each stage ends in 2×2 max-pooling)")
    convs_per_stage: int = option(2, R, "cnn: 3×3 convolutions per stage")
    fc: List[int] = option([], R, "lenet/cnn: widths of the hidden fully connected layers before the classifier")


@dataclass
class ResNetConfig(ModelConfig):
    depth: int = option(20, R, "resnet: 6n + 2 layers, n blocks per stage (20, 32, 44, 56, 110)")
    widths: List[int] = option([16, 32, 64], R, "resnet: channels of the three stages")
    shortcut: str = option("A", R, "resnet: where a block changes shape, A: the identity subsampled and zero-padded "
                                   "(no parameters, He et al. 2015's CIFAR choice, so norm-free and normalized nets "
                                   "differ only in their branches) | B: a 1×1 conv (+ norm in post-activation designs)")


@dataclass
class ViTConfig(ModelConfig):
    patch_size: int = option(4, R, "vit: side of the square patches (must divide the image: 4 for 8×8, 28×28, 32×32)")
    dim: int = option(64, R, "vit: token width")
    depth: int = option(4, R, "vit: transformer blocks")
    heads: int = option(4, R, "vit: attention heads (must divide model.dim)")
    mlp_ratio: float = option(2.0, R, "vit: MLP hidden width / model.dim")
    pooling: str = option("cls", R, "vit: cls (the class token) | mean (the mean of the patch tokens)")
    qk_norm: bool = option(False, R, "vit: LayerNorm over each head's queries and keys before attention (QK-norm: "
                                     "Dehghani et al. 2023, timm's qk_norm)", neutral=False)


@dataclass
class TVResNetConfig(ModelConfig):
    """torchvision's resnet18: nothing of its own to configure (the norm comes from the variant)."""


@dataclass
class VariantConfig:
    norm: str = option("batch", R, "batch | scratch | layer | group | none (`bnablate list axes`)")
    placement: str = option("pre_act", R, "pre_act | post_act | post_pool | none: where the norm sits in each block")
    dropout: str = option("none", R, "none | norm_then_dropout | dropout_then_norm")
    dropout_p: float = option(0.5, R, "dropout rate (only with dropout ≠ none)")
    bias: str = option("auto", R, "on | off | auto (off exactly when a norm directly follows the affine layer)")
    activation: str = option("relu", R, "the nonlinearity (`bnablate list axes`)")
    groups: int = option(8, R, "GroupNorm groups (channels must be divisible by it)")
    residual: str = option("original", R, "residual models: the block design, He et al. 2016 Fig. 4: original (a) | "
                                          "bn_after_add (b) | relu_before_add (c) | relu_preact (d) | full_preact (e)",
                           neutral="original")
    residual_init: str = option("standard", R, "residual models: how each residual branch starts: standard | "
                                               "zero_gamma (last norm's γ = 0) | skipinit (a scalar gain from 0, no "
                                               "norm)", neutral="standard")
    transformer: str = option("pre", R, "transformer models (vit): where each block's norms sit: pre (x + F(N(x))) | "
                                        "post (N(x + F(x))) | peri (x + N(F(N(x)))) | deepnorm (N(αx + F(x)))",
                              neutral="pre")
    dyt_alpha0: float = option(0.5, R, "variant.norm=dyt: Dynamic Tanh's initial α, > 0 (Zhu et al. 2025's default "
                                       "0.5; they tune it, smaller for wider models); other norms leave it at 0.5",
                               neutral=0.5)
    ffn_norm: bool = option(False, R, "transformer models: one more of the variant's norms inside each MLP, between "
                                      "its first linear layer and the activation (Yao et al. 2021's BN-FFN: with "
                                      "variant.norm=batch, variant=tf_bn_ffn)", neutral=False)
    description: str = option("", B, "shown by `bnablate list variants`")


@dataclass
class BNConfig:
    """How every batch-norm layer is built (momentum, eps, affine reach GroupNorm/LayerNorm as eps and affine) and
    which statistics evaluation normalizes with."""
    eval_stats: str = option("running", R, "running (eval()) | batch (train() under no_grad: the mistake) | precise "
                                           "(PreciseBN) | precise_nodrop (PreciseBN with dropout off: the "
                                           "variance-shift remedy) | population (PreciseBN at train.batch_size with "
                                           "ghost batches off: Wu & Johnson's population statistics)",
                             neutral="running")
    precise_batches: int = option(200, R, "training batches PreciseBN averages over (fvcore's default); also "
                                          "bn.eval_stats=population and finetune.bn=reset", neutral=200)
    momentum: Optional[float] = option(0.1, R,
                                       "PyTorch convention: running = (1 - momentum) · running + momentum · batch; "
                                       "null = cumulative average. Keras/TF's momentum is the other weight: Keras 0.99 "
                                       "(its default) = PyTorch 0.01", neutral=0.1)
    eps: float = option(1e-5, R, "added to the variance before the square root (Keras' default is 1e-3)", neutral=1e-5)
    affine: bool = option(True, R, "learned per-channel scale γ and shift β", neutral=True)
    conv_beta_init: float = option(0.0, R, "initial β of every norm after a conv layer (norms after linear layers "
                                           "keep 0); a from-scratch BN tutorial starts it at 1", neutral=0.0)
    running_var_init: float = option(1.0, R, "initial running variance of the batch-statistics norms (PyTorch: 1; a "
                                             "from-scratch BN tutorial starts it at 0); running means start at 0",
                                     neutral=1.0)
    ghost_batch_size: Optional[int] = option(None, R, "ghost batch norm: in training, BN (variant.norm=batch or "
                                                      "batch_renorm) normalizes each chunk of this many samples with "
                                                      "its own statistics (the normalization batch; train.batch_size "
                                                      "stays the optimization batch); must divide train.batch_size; "
                                                      "null: the whole batch", neutral=None)
    ghost_stats: str = option("chunk", R, "ghost batches' running statistics: chunk (updated once per chunk) | step "
                                          "(once per optimization step from the first chunk, the last smaller batch "
                                          "cut as train.nproc processes share it: what data-parallel BN's rank 0 "
                                          "holds); needs bn.ghost_batch_size", neutral="chunk")
    renorm_warmup: int = option(100, R, "batch_renorm: training steps at r_max = 1, d_max = 0 (plain BN) before the "
                                        "limits open (Ioffe 2017: 5k)", neutral=100)
    renorm_ramp: int = option(1000, R, "batch_renorm: steps over which r_max and d_max rise linearly to their final "
                                       "values (Ioffe 2017: 40k and 25k; size it to your run)", neutral=1000)
    renorm_rmax: float = option(3.0, R, "batch_renorm: final r_max ≥ 1 (r clipped to [1/r_max, r_max])", neutral=3.0)
    renorm_dmax: float = option(5.0, R, "batch_renorm: final d_max ≥ 0 (d clipped to [−d_max, d_max])", neutral=5.0)
    renorm_avg: str = option("var", R, "batch_renorm's running statistics: var (an average of the unbiased variance, "
                                       "as BN) | std (an average of σ, as Ioffe 2017)", neutral="var")
    sync: bool = option(False, R, "with train.nproc > 1 on CUDA: SyncBatchNorm, BN statistics over the whole batch "
                                  "across processes (refused on CPU: there bn.ghost_batch_size simulates local BN)",
                        neutral=False)


@dataclass
class FinetuneConfig:
    """Pretrain on `source`, then fine-tune on `dataset` with the run's train/optim settings (train.epochs,
    train.batch_size are the fine-tuning ones) and BN handled as `bn` says."""
    source: Optional[str] = option(None, R, "a conf/dataset name (mnist, cifar10, ...) to pretrain on; null = no "
                                            "fine-tuning", neutral=None)
    source_classes: Optional[List[int]] = option(None, R, "like dataset.classes, for the source", neutral=None)
    source_subset: Optional[int] = option(None, R, "like dataset.train_subset, for the source", neutral=None)
    source_epochs: int = option(3, R, "pretraining epochs", neutral=3)
    source_batch_size: int = option(64, R, "pretraining batch size", neutral=64)
    bn: str = option("train", R, "train | freeze_affine | freeze | reset | frozen: BN while fine-tuning", neutral="train")
    checkpoint_dir: str = option("${out_dir}/checkpoints", L,
                                 "pretrained weights are saved here, keyed by a hash of the pretraining config, and "
                                 "reused by every run that needs the same pretraining")


@dataclass
class OptimConfig:
    name: str = option("adam", R, "adam | adamw (decoupled weight decay) | sgd")
    lr: float = option(1e-3, R, "learning rate (runs that differ only in seed and lr can share a pack)",
                       pack_varies=True)
    momentum: float = option(0.9, R, "sgd only")
    nesterov: bool = option(False, R, "sgd only")
    weight_decay: float = option(0.0, R, "L2 weight decay")
    schedule: str = option("none", R, "none | cosine | step | multistep (lr × optim.gamma at each of "
                                      "optim.milestones), counted in optim.schedule_unit")
    step_size: int = option(10, R, "epochs (optim.schedule_unit) between decays for schedule=step")
    gamma: float = option(0.1, R, "decay factor for schedule=step and multistep")
    schedule_unit: str = option("epoch", R, "what optim.schedule counts and when it steps: epoch (once per epoch: "
                                            "cosine's T_max is train.epochs) | step (after every optimizer step: "
                                            "T_max, step_size and milestones in optimizer steps)", neutral="epoch")
    milestones: Optional[List[int]] = option(None, R, "schedule=multistep: increasing optim.schedule_unit counts at "
                                                      "which lr is multiplied by optim.gamma, each before the run's "
                                                      "end (He et al. 2016: [32000,48000] steps); null otherwise",
                                             neutral=None)
    wd_exclude: str = option("none", R, "parameters weight decay skips: none (every parameter decayed) | timm (as "
                                        "timm's param_groups_weight_decay: every 1-D parameter — norms' γ/β, biases, "
                                        "DyT's α — and a ViT's position embedding and class token); needs "
                                        "optim.weight_decay > 0", neutral="none")
    batch_scaling: str = option("none", R, "batch-size scaling of lr: lr × (batch_size / ref_batch_size) for linear "
                                           "(Goyal et al. 2017), lr × sqrt(batch_size / ref_batch_size) for sqrt, lr "
                                           "unchanged for none", neutral="none")
    ref_batch_size: int = option(64, R, "the batch size at which lr is the configured one (batch_scaling)",
                                 neutral=64)
    fused: bool = option(False, R, "torch's fused optimizer kernels instead of foreach: faster, last-digit different "
                                   "numbers", neutral=False)
    warmup_steps: int = option(0, R, "learning-rate warm-up over the first N optimizer steps, on top of optim.schedule "
                                     "(0: none; must be shorter than the run)", neutral=0)
    warmup_method: str = option("linear", R, "linear (step s of N at lr × (start + (1 − start)·s/N), from "
                                             "optim.warmup_start × lr up to lr) | constant (optim.warmup_start × lr "
                                             "for N steps, then lr: He et al. 2016's ResNet-110 start)",
                                neutral="linear")
    warmup_start: float = option(0.0, R, "the warm-up's first factor of lr: 0 is linear from 0; constant needs "
                                         "0 < start < 1 (He et al.: 0.1, i.e. 0.01 at lr 0.1)", neutral=0.0)


@dataclass
class TrainConfig:
    epochs: int = option(10, R, "training epochs")
    batch_size: int = option(64, R, "training batch size")
    eval_batch_size: int = option(1024, E, "evaluation only; does not change results")
    compile: bool = option(False, E, "torch.compile the model (same maths, other kernels: equal to float "
                                     "tolerance)")
    compile_mode: str = option("default", E, "default | reduce-overhead (CUDA graphs) | max-autotune | "
                                             "max-autotune-no-cudagraphs")
    channels_last: bool = option(False, E, "NHWC memory layout for conv models and their inputs (same maths, other "
                                           "kernels)")
    precision: str = option("fp32", R, "fp32 | bf16 (autocast of forward passes; parameters and optimizer stay "
                                       "FP32): changes numerics", neutral="fp32")
    tf32: bool = option(False, R, "CUDA only: TF32 tensor-core matmuls/convolutions (~1e-3 relative error)",
                        neutral=False)
    deterministic: bool = option(True, E, "CUDA only: bitwise-repeatable kernels (cuDNN autotuning off); false may "
                                          "be faster")
    checkpoint: bool = option(False, E, "save the run's whole state after every epoch (OUT_DIR/resume/<key>.pt) and, "
                                        "after Ctrl-C, kill -9 or a session's end, resume it at its next epoch with "
                                        "the record an uninterrupted run writes; lone runs (a sweep then does not "
                                        "pack them), not with train.nproc > 1 or train.probe")
    probe: bool = option(False, E, "record each layer's gradient norm and each residual block's output RMS at "
                                   "initialisation and at the first step of every epoch (the record's probe, the "
                                   "report's grad_norms figure); such runs train alone, not in packs")
    nproc: int = option(1, R, "data-parallel processes (DDP over torch.distributed, started by torchrun's launcher; "
                              "gloo on CPU, NCCL on CUDA): each trains train.batch_size/nproc samples of every batch, "
                              "with BN over its share (local BN)", neutral=1)


@dataclass
class SweepConfig:
    """The sweep's name and the defaults of its report (also of `bnablate report` on its folder; its options win)."""
    name: str = option("placement", B, "the sweep's name: the `sweep` column, and out_dir's default folder")
    description: str = option("", B, "shown by `bnablate list sweeps`")
    baseline: str = option("no_bn", B, "the variant every other variant is compared with, or COLUMN=VALUE "
                                       "(finetune.bn=train)")
    pivot: Optional[str] = option(None, B, "a factor to tabulate and plot the metric against (lr, batch_size, ...)")
    trained_above: Optional[float] = option(None, B, "with pivot: the largest value whose mean metric reaches this")
    per_epoch: List[str] = option([], B, "per-epoch metrics to tabulate (train_loss, test_acc, ...)")
    plan: Optional[str] = option(None, B, "set by `sweep --design`: the hash of the plan (OUT_DIR/plans/<grid>.json) "
                                          "the run was trained under; null for runs trained without one")


@dataclass
class ReportConfig:
    """How a report decides (the one written at the end of a sweep, `sweep --until-decided`'s looks, and `bnablate
    report` on the folder unless its options say otherwise); docs/statistics.md explains each."""
    metric: str = option("final_test_acc", B, "the runs.csv column ranked, tested and plotted")
    alpha: float = option(0.05, B, "family-wise error rate of the verdicts (better / worse / equivalent), in (0, 1)")
    margin: Optional[float] = option(None, B, "equivalence margin in metric points, declared before looking (1.0 = 1 "
                                              "percentage point of accuracy); null: 1.0 for accuracies, no "
                                              "equivalence calls for other metrics")
    compare: str = option("baseline", B, "baseline: every group vs sweep.baseline | pairs: all pairs of groups, one "
                                         "family per context | best: all pairs, and which group is best within "
                                         "the margin (`sweep --goal best` races to it)")


@dataclass
class TensorBoardLoggerConfig:
    log_dir: str = option("${out_dir}/tb", L, "logger=tensorboard: one event folder per run under it "
                                              "(`tensorboard --logdir` this)", table=False)


@dataclass
class MLflowLoggerConfig:
    tracking_uri: str = option("sqlite:///${out_dir}/mlflow.db", L,
                               "logger=mlflow: the tracking store (MLflow recommends a database store; its file store "
                               "is deprecated); any URI MLflow accepts", table=False)


@dataclass
class LoggerConfig:
    """Trackers each finished run is also logged to (conf/logger); never part of a run key or the tables."""
    backends: List[str] = option([], E, "tensorboard and/or mlflow; [] (logger=none) logs nowhere else",
                                 table=False)
    tensorboard: TensorBoardLoggerConfig = field(default_factory=TensorBoardLoggerConfig)
    mlflow: MLflowLoggerConfig = field(default_factory=MLflowLoggerConfig)


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
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    seed: int = option(0, R, "every random stream of a run derives from it (init, batches, augmentation, dropout); an "
                                 "integer in [0, 2**32 - 1]",
                       pack_varies=True)
    device: str = option("auto", E, "auto (CUDA when present, else CPU) | cpu | cuda | cuda:N")
    threads: int = option(0, E, "torch intra-op threads. 0 (auto): on a CPU, decided before each run — the cores "
                                "this process may use less those other processes keep busy, at most torch's default "
                                "— so concurrent sweeps do not oversubscribe; on CUDA, torch's default")
    pack: str = option("auto", E, "sweeps train runs that differ only in seed (and lr) as packs of up to pack_size "
                                  "in one pass. auto: on CUDA, and on a CPU at train.batch_size ≤ "
                                  "model.cpu_pack_max_batch (where packing measured faster); true: always; false: "
                                  "never", table=False)
    pack_impl: str = option("auto", E, "how a pack computes: grouped (grouped convs, batched matmuls, wide norms), "
                                       "vmap (torch.func), auto (grouped where every layer has a grouped form, else "
                                       "vmap); the one used is in each record's provenance", table=False)
    pack_size: str = option("auto", E, "auto: as many runs as fit in 80 % of the GPU's free memory (a one-step probe "
                                       "measures one run's share; at most 64), 8 on a CPU; or an integer ≥ 1 "
                                       "(runs.csv's pack_size column is the size each run trained in)", table=False)
    out_dir: str = option("runs/${sweep.name}", L, "where records, tables and reports are written")


# model name → its schema (conf/model/NAME.yaml extends base_NAME); a model key belongs to the models declaring it.
MODEL_SCHEMAS: Dict[str, type] = {"mlp": MLPConfig, "lenet": LeNetConfig, "cnn": CNNConfig, "resnet": ResNetConfig,
                                  "tv_resnet18": TVResNetConfig, "vit": ViTConfig}


# dataset name → its schema, for the datasets with keys of their own (conf/dataset/NAME.yaml extends base_NAME)
DATASET_SCHEMAS: Dict[str, type] = {"arrays": ArraysDatasetConfig, "imagefolder": ImageFolderDatasetConfig,
                                    "torchvision": TorchvisionDatasetConfig}


def register_model_schema(name: str, schema: type) -> None:
    """A plugin's model schema (a ModelConfig subclass whose fields are declared with option(...)): `model=NAME`
    composes on it (its YAML extends base_NAME; without a YAML, the schema's defaults with name=NAME are the option).
    Call it at the plugin's import: the key lists are derived from the schemas once plugins are loaded."""
    _register_schema("model", MODEL_SCHEMAS, name, schema, ModelConfig)


def register_dataset_schema(name: str, schema: type) -> None:
    """A plugin's dataset schema (a DatasetConfig subclass), as register_model_schema for `dataset=NAME`."""
    _register_schema("dataset", DATASET_SCHEMAS, name, schema, DatasetConfig)


def _register_schema(group: str, schemas: Dict[str, type], name: str, schema: type, base: type) -> None:
    if not (isinstance(schema, type) and issubclass(schema, base) and dataclasses.is_dataclass(schema)):
        raise TypeError(f"{group} schema for '{name}' must be a @dataclass subclass of {base.__name__}")
    if name in schemas and schemas[name] is not schema:
        raise ValueError(f"{group} schema '{name}' is already registered (by {schemas[name].__module__}); pick "
                         f"another name")
    schemas[name] = schema
    cs = ConfigStore.instance()
    cs.store(group=group, name=f"base_{name}", node=schema)
    cs.store(group=group, name=name, node=schema(name=name))  # a YAML of the same name (the plugin's) takes precedence


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="dataset", name="base_dataset", node=DatasetConfig)
    for name, schema in DATASET_SCHEMAS.items():
        cs.store(group="dataset", name=f"base_{name}", node=schema)
    for name, schema in MODEL_SCHEMAS.items():
        cs.store(group="model", name=f"base_{name}", node=schema)
    cs.store(group="variant", name="base_variant", node=VariantConfig)
    cs.store(group="optim", name="base_optim", node=OptimConfig)
    cs.store(group="sweep", name="base_sweep", node=SweepConfig)


register_configs()
load_plugins(CONF_DIR)  # before the key lists below: a plugin's schema keys are derived like bnablate's own

# Every list of keys (run key, tables, report factors, packs), derived from the roles declared above.
KEYS = KeyLists.of(Config)
NON_RESULT_KEYS = KEYS.not_in_run_key
NEUTRAL_VALUES = KEYS.neutral_values


def neutral_values_for(plain: Dict[str, Any]) -> Dict[str, Any]:
    """The neutral values that apply to a plain config: a model key (model.pool) only where the config's model
    declares it, so an mlp run does not show lenet's pooling; every other key everywhere."""
    schema = MODEL_SCHEMAS.get(str(plain.get("model", {}).get("name")))
    own = {f.name for f in dataclasses.fields(schema)} if schema else set()
    return {k: v for k, v in NEUTRAL_VALUES.items() if not k.startswith("model.") or k[len("model."):] in own}


def compose_config(overrides: Optional[List[str]] = None, return_hydra_config: bool = False) -> DictConfig:
    """Compose conf/config.yaml with Hydra overrides, exactly as `bnablate run` does (with the `hydra` node too when
    asked: the sweep planner reads the preset's grid and the launcher from it)."""
    overrides = [*search_path_override(), *(overrides or [])]  # plugins' configs (pkg://...) come first
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=return_hydra_config)


def to_plain(cfg: DictConfig) -> Dict[str, Any]:
    """Resolved config as plain JSON-able dicts (the form stored in run records)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
