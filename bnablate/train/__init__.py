"""Training: optimizer factories, the one epoch loop and evaluation, and the driver of K ≥ 1 runs."""

from .execution import ConfigError, configure_device, resolve_device
from .loop import LoneRun, batch_indices, epoch_batches, evaluate, train_one_epoch
from .optim import OPTIMIZERS, build_optimizer, build_scheduler
from .runner import preflight, run_experiment, run_packed, train_runs, validate_config

__all__ = ["OPTIMIZERS", "ConfigError", "LoneRun", "batch_indices", "build_optimizer", "build_scheduler",
           "configure_device", "epoch_batches", "evaluate", "preflight", "resolve_device", "run_experiment",
           "run_packed", "train_one_epoch", "train_runs", "validate_config"]
