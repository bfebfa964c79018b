"""How a run executes (device, threads, determinism, precision, memory layout, compilation), kept apart from what it
computes: every option here is recorded in the run's provenance."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch
from torch import Tensor, nn

from ..errors import ConfigError  # noqa: F401  (re-exported: callers import it from bnablate.train)
from ..registry import check_choice
from .threads import set_threads

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # name → autocast dtype (None: no autocast)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} was asked for but CUDA is not available here; use device=auto or device=cpu.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"Unknown device '{name}'; use auto, cpu, cuda or cuda:N.") from None


def validate_execution(train) -> None:
    check_choice("train.precision", train.precision, PRECISIONS, ConfigError)
    check_choice("train.compile_mode", train.compile_mode, COMPILE_MODES, ConfigError)


def configure_device(cfg) -> torch.device:
    """The run's device, with threads set (threads=0 on a CPU: what the machine has free, train/threads.py) and, on CUDA, the numerics the config asks for. train.deterministic (the
    default) gives bitwise-repeatable CUDA runs: cuDNN autotuning off, deterministic algorithms (warning where an op
    has none), and the cuBLAS workspace setting cuBLAS needs for deterministic GEMMs. train.tf32=false (default) keeps
    full FP32: cuDNN convolutions otherwise default to TF32 (~1e-3 relative error), which makes runs drift apart."""
    device = resolve_device(cfg.device)
    if int(cfg.threads) > 0 or device.type == "cpu":  # on CUDA, auto leaves torch's count: the CPU only feeds it
        set_threads(int(cfg.threads))
    if device.type == "cuda":
        deterministic = bool(cfg.train.deterministic)
        if deterministic:  # read when cuBLAS creates its handle: set before the run's first GEMM
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        torch.backends.cudnn.allow_tf32 = bool(cfg.train.tf32)
        torch.backends.cuda.matmul.allow_tf32 = bool(cfg.train.tf32)
    return device


def amp_dtype(train) -> Optional[torch.dtype]:
    """The autocast dtype of forward passes: bfloat16 for precision=bf16 (parameters, optimizer state and the loss
    stay FP32), None for fp32."""
    return PRECISIONS[train.precision]


def prepare_model(model: nn.Module, train) -> nn.Module:
    """channels_last memory layout (in place) and torch.compile; returns the module to call for steps (sharing the
    model's parameters)."""
    if train.channels_last:
        model.to(memory_format=torch.channels_last)
    if train.compile:
        return torch.compile(model, mode=None if train.compile_mode == "default" else train.compile_mode)
    return model


def prepare_inputs(x: Tensor, train) -> Tensor:
    """Images (N, C, H, W) in channels_last layout when the model uses it, so convolutions need no layout copies."""
    if train.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def execution_info(cfg, device: torch.device) -> Dict[str, Any]:
    """The execution options in effect, for the record's provenance (torch_threads: this run's own count — with
    threads=0 chosen at its start — where the record's provenance would read the process's count at the end)."""
    info: Dict[str, Any] = {"torch_threads": torch.get_num_threads(), "precision": str(cfg.train.precision), "channels_last": bool(cfg.train.channels_last),
                            "compile": bool(cfg.train.compile),
                            "compile_mode": str(cfg.train.compile_mode) if cfg.train.compile else None}
    if device.type == "cuda":
        info.update(tf32=bool(cfg.train.tf32), deterministic=bool(cfg.train.deterministic),
                    cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    return info
