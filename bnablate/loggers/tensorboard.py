"""TensorBoard backend: each epoch's scalars as the run trains (flushed, so TensorBoard shows the curve live), then the
run's hparams when it ends, under logger.tensorboard.log_dir/<run label>/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig

from ..errors import ConfigError
from . import epoch_scalars, factors, register_logger


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


class Live:
    """One run's SummaryWriter, open while it trains."""

    def __init__(self, cfg: DictConfig, key: str, label: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        run_dir = Path(str(cfg.logger.tensorboard.log_dir)) / label
        shutil.rmtree(run_dir, ignore_errors=True)  # a re-run (after a failure or Ctrl-C) replaces the earlier curves
        self.writer = SummaryWriter(log_dir=str(run_dir))
        self.last: Dict[str, float] = {}

    def epoch(self, row: Dict[str, Any]) -> None:
        scalars = epoch_scalars(row)
        for k, v in scalars.items():
            self.writer.add_scalar(k, v, global_step=int(row["epoch"]))
        self.writer.flush()  # on disk now: TensorBoard reads the event file while the run goes on
        self.last = scalars or self.last

    def finish(self, record: Dict[str, Any]) -> None:
        self.writer.add_hparams(factors(record), {f"hparam/{k}": v for k, v in self.last.items()} or
                                {"hparam/none": 0.0}, run_name=".")  # ".": in the run's own dir, not a subdir
        self.writer.close()


register_logger("tensorboard", check, Live)
