"""Training: optimizer factories, the epoch/eval loop functions, and the single-run driver."""

from .execution import ConfigError, configure_device, resolve_device
from .loop import batch_indices, epoch_batches, evaluate, train_one_epoch
from .optim import OPTIMIZERS, build_optimizer, build_scheduler
from .runner import preflight, run_experiment, validate_config

__all__ = ["OPTIMIZERS", "ConfigError", "batch_indices", "build_optimizer", "build_scheduler", "configure_device",
           "epoch_batches", "evaluate", "preflight", "resolve_device", "run_experiment", "train_one_epoch",
           "validate_config"]
