"""The calibration behind a sweep's time estimate (`sweep --dry-run`, `bnablate.bill`): a few training steps and one
evaluation batch of one architecture on this machine, through the trainer's own run set, epoch loop and evaluation,
scaled to a whole run's steps and evaluation batches."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from ..data import DataSplits
from ..layers.ghost_bn import set_ghost_chunks
from ..models import build_model
from ..seeding import generator
from ..train.execution import amp_dtype, configure_device, prepare_inputs, resolve_device
from ..train.loop import evaluate, steps_per_epoch, timed
from ..train.memory import PROBE_STEPS
from ..train.runner import _run_set, eval_batch
from .harness import time_steps

STEPS = 5  # training steps timed together, in chunks, until MIN_SECONDS of them or MAX_CHUNKS
MIN_SECONDS = 1.0  # on a busy machine a step's time swings (threads descheduled mid-step): a second of steps averages
MAX_CHUNKS = 10  # the swings out, at a cost of about a second per architecture
WARMUP = 2  # untimed steps first: kernels chosen, the optimizer's state allocated


@dataclass(frozen=True)
class Measured:
    """One architecture's measured costs in wall seconds: a training step, evaluating one image, and building the run
    set (models, optimizer) — for a pack of `pack` runs together."""
    step_s: float
    eval_image_s: float
    setup_s: float
    pack: int = 1
    steps: int = STEPS  # how many training steps step_s is the mean of

    def run_seconds(self, cfg: DictConfig, data: DataSplits) -> float:
        """Seconds one run of `cfg` takes (a pack's wall time shared among its runs): every epoch's training steps
        and its evaluation of the validation and test images, the setup, and on a CPU the memory probe's steps."""
        per_epoch = (steps_per_epoch(len(data.train_x), int(cfg.train.batch_size)) * self.step_s +
                     (len(data.val_x) + len(data.test_x)) * self.eval_image_s)
        probe = PROBE_STEPS * self.step_s if resolve_device(str(cfg.device)).type != "cuda" else 0.0
        return (int(cfg.train.epochs) * per_epoch + self.setup_s + probe) / self.pack


def measure(cfg: DictConfig, data: DataSplits, pack: int = 1) -> Measured:
    """Time training steps (after WARMUP untimed ones: at least STEPS, about MIN_SECONDS of them) and one evaluation
    batch of `pack` runs of cfg's architecture (seeds 0…, built as a run builds them) on cfg's device. torch.compile is left off: its compile time
    would dwarf the few steps (and a compiled step is no slower than this one)."""
    cfg = OmegaConf.merge(cfg, {"train": {"compile": False}})
    device = configure_device(cfg)
    data = data.to(device)
    x = prepare_inputs(data.train_x, cfg.train)
    batch = int(cfg.train.batch_size)
    amp = amp_dtype(cfg.train)

    def build():
        models = [build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, s, bn=cfg.bn).to(device)
                  for s in range(pack)]
        for m in models:
            set_ghost_chunks(m, batch // int(cfg.train.nproc))
        return _run_set([cfg] * pack, models)

    build()  # untimed: the process's first model pays one-off costs (lazy imports, allocator) a sweep pays once
    (runs, opt, _), setup_s = timed(build, device)
    gens = [generator(s, "calibrate") for s in range(pack)]
    augment = [generator(s, "augment", device=device) for s in range(pack)] if data.augment else None
    chunks = [time_steps(runs, opt, x, data.train_y, batch, gens, WARMUP, STEPS, device, amp, augment)]
    while sum(chunks) < MIN_SECONDS and len(chunks) < MAX_CHUNKS:
        chunks.append(time_steps(runs, opt, x, data.train_y, batch, gens, 0, STEPS, device, amp, augment))
    steps = STEPS * len(chunks)
    size, stats = eval_batch(cfg)
    part = slice(0, min(size, len(data.test_x)))
    xe, ye = prepare_inputs(data.test_x[part], cfg.train), data.test_y[part]
    evaluate(runs, xe, ye, size, bn_stats=stats, amp=amp)  # untimed: the first pass allocates
    eval_s = timed(lambda: evaluate(runs, xe, ye, size, bn_stats=stats, amp=amp), device)[1]
    return Measured(sum(chunks) / steps, eval_s / len(ye), setup_s, pack, steps)


__all__ = ["Measured", "STEPS", "WARMUP", "measure"]
