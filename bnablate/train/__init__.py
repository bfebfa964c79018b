"""Training: optimizer factories, the epoch/eval loop functions, and the single-run driver."""

from .loop import batch_indices, evaluate, train_one_epoch
from .optim import OPTIMIZERS, build_optimizer, build_scheduler
from .runner import ConfigError, preflight, resolve_device, run_experiment, validate_config

__all__ = ["OPTIMIZERS", "ConfigError", "batch_indices", "build_optimizer", "build_scheduler", "evaluate", "preflight",
           "resolve_device", "run_experiment", "train_one_epoch", "validate_config"]
