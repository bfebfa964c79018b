"""TensorBoard backend: per-epoch scalars and hparams of a finished run under logger.tensorboard.log_dir/<run label>/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig

from ..errors import ConfigError
from . import epoch_scalars, factors, register_logger, run_label


def check(cfg: DictConfig) -> None:
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("logger=tensorboard needs the tensorboard package: pip install 'bnablate[tensorboard]' "
                          "(or choose logger=none).") from None
    d = Path(str(cfg.logger.tensorboard.log_dir))
    try:
        d.mkdir(parents=True, exist_ok=True)
        ok = os.access(d, os.W_OK)
    except OSError:
        ok = False
    if not ok:
        raise ConfigError(f"logger.tensorboard.log_dir={d} is not writable; give a writable folder "
                          f"(logger.tensorboard.log_dir=PATH).")


def log(cfg: DictConfig, record: Dict[str, Any]) -> None:
    from torch.utils.tensorboard import SummaryWriter
    run_dir = Path(str(cfg.logger.tensorboard.log_dir)) / run_label(record)
    shutil.rmtree(run_dir, ignore_errors=True)  # a --force re-run replaces the earlier curves
    with SummaryWriter(log_dir=str(run_dir)) as w:
        last: Dict[str, float] = {}
        for row in record.get("metrics") or []:
            scalars = epoch_scalars(row)
            for k, v in scalars.items():
                w.add_scalar(k, v, global_step=int(row["epoch"]))
            last = scalars or last
        w.add_hparams(factors(record), {f"hparam/{k}": v for k, v in last.items()} or {"hparam/none": 0.0},
                      run_name=".")  # "." keeps the hparams in the run's own dir rather than a timestamped subdir


register_logger("tensorboard", check, log)
