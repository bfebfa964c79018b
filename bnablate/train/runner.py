"""Training K ≥ 1 runs from composed configs (a lone run, or a pack): validate, load data, build, train, evaluate."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Generator, List, Optional, Sequence, Tuple

import torch
from omegaconf import DictConfig

from ..loggers import check_loggers
from ..data import DataError, DataSplits, class_count, dataset_shape, load_data
from ..layers import BATCH_STAT_NORMS, has_norm
from ..layers.ghost_bn import set_ghost_chunks
from ..models import build_model, count_params
from ..pack.model import PackedModel, PerRunLR
from ..pack.rules import packable
from ..results.correctness import encode_correct
from ..seeding import derive_seed, generator
from .bn_stats import RECOMPUTED, precise_bn, validate_bn
from .distributed import DataParallelRun, check_last_batch, is_worker, launch, validate_distributed
from .execution import (ConfigError, amp_dtype, configure_device, execution_info, prepare_inputs, prepare_model,
                        validate_execution)
from .finetune import prepare_finetune, trainable_parameters, validate_finetune
from .loop import LoneRun, evaluate, steps_per_epoch, timed, train_one_epoch
from .memory import PROBE_STEPS, TrainingMemory, run_set_bytes
from . import resume
from .probe import Probe, validate_probe
from .optim import LRSchedule, build_optimizer, check_warmup, effective_lr, validate_optim

EpochCallback = Callable[[Dict[str, Any]], None]
MAX_SEED = 2**32 - 1  # a seed is 0 ≤ seed ≤ 2**32 - 1: NumPy's and CUDA's generators accept that range


def validate_config(cfg) -> None:
    """Every check that needs no data: raises ConfigError naming the fix."""
    try:
        input_shape, _ = dataset_shape(cfg.dataset)  # the user's own files: read from their headers
        validate_optim(cfg.optim)
        validate_execution(cfg.train)
        validate_bn(cfg.bn)
        build_model(cfg.model, cfg.variant, input_shape, class_count(cfg.dataset), seed=0, bn=cfg.bn)
        validate_finetune(cfg)
        validate_probe(cfg.train)
        check_loggers(cfg)  # a tracker that cannot start fails here, before any training
    except ConfigError:
        raise
    except (KeyError, ValueError, DataError) as e:  # DataError: the user's own files, read for their shape
        raise ConfigError(str(e)) from None
    if not 0 <= int(cfg.seed) <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in [0, 2**32 - 1] (the range every random generator accepts: "
                          f"NumPy's reject negative seeds), got {cfg.seed}; use e.g. seed=0 or 'seed=range(5)'.")
    if not 0.0 <= float(cfg.variant.dropout_p) < 1.0:
        raise ConfigError(f"variant.dropout_p must be in [0, 1) (the probability of zeroing an activation), got "
                          f"{cfg.variant.dropout_p}; e.g. variant.dropout_p=0.5.")
    if int(cfg.train.epochs) < 1:
        raise ConfigError(f"train.epochs must be ≥ 1, got {cfg.train.epochs}.")
    if int(cfg.train.batch_size) < 1:
        raise ConfigError(f"train.batch_size must be ≥ 1, got {cfg.train.batch_size}.")
    if int(cfg.train.batch_size) == 1 and has_norm(cfg.variant) and cfg.variant.norm in BATCH_STAT_NORMS:
        raise ConfigError(
            "train.batch_size=1 with batch normalization cannot train: BN normalizes each feature with the statistics "
            "of the current batch, and a batch of one sample has no variance (outputs collapse to β; PyTorch raises "
            "'Expected more than 1 value per channel'). Use a larger batch (train.batch_size=16 or more), or a "
            "per-sample norm that works at batch 1: variant=ln_pre_act or variant=gn_pre_act.")
    ghost = cfg.bn.ghost_batch_size
    if ghost is not None and (int(ghost) < 2 or int(cfg.train.batch_size) % int(ghost)):
        raise ConfigError(f"bn.ghost_batch_size={ghost} must be ≥ 2 (BN needs two samples for a variance) and divide "
                          f"train.batch_size={cfg.train.batch_size} into equal chunks: e.g. bn.ghost_batch_size="
                          f"{_divisor(int(cfg.train.batch_size))}, or null for the whole batch.")
    if has_norm(cfg.variant) and cfg.variant.norm == "batch_renorm" and cfg.bn.eval_stats in RECOMPUTED:
        raise ConfigError(f"bn.eval_stats={cfg.bn.eval_stats} re-estimates BN's running statistics from scratch, and "
                          f"Batch Renorm's are part of its training (r and d are measured against them; their step "
                          f"count drives the r_max/d_max schedule): use bn.eval_stats=running with "
                          f"variant.norm=batch_renorm.")
    if ghost is not None and cfg.variant.norm == "batch_renorm" and cfg.bn.momentum is None \
            and cfg.bn.ghost_stats == "chunk":
        raise ConfigError("Batch Renorm with ghost batches and bn.ghost_stats=chunk updates its running statistics "
                          "once per chunk, and bn.momentum=null's cumulative average counts steps, not chunks: use a "
                          "momentum (bn.momentum=0.1), bn.ghost_stats=step (one update per step), or "
                          "bn.ghost_batch_size=null.")
    validate_distributed(cfg)
    if cfg.train.checkpoint and (int(cfg.train.nproc) > 1 or cfg.train.probe):
        what = "train.nproc > 1 (its state is spread over processes)" if int(cfg.train.nproc) > 1 else \
            "train.probe (its per-step rows and hooks are not saved)"
        raise ConfigError(f"train.checkpoint=true resumes a lone run from its saved state, which is not built for "
                          f"{what}: use train.checkpoint=false, or drop the other option for long runs.")


def _divisor(n: int) -> int:
    """A ghost size to suggest: the largest divisor of n in 2 … n/2, else n."""
    return next((d for d in range(n // 2, 1, -1) if n % d == 0), n)


def check_data(cfg, data: DataSplits) -> None:
    n = len(data.train_x)
    if int(cfg.train.batch_size) > n:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} is larger than the training set ({n} images of "
                          f"{cfg.dataset.name} after the validation split); use train.batch_size≤{n}.")
    ghost = None if cfg.bn.ghost_batch_size is None else int(cfg.bn.ghost_batch_size)
    check_last_batch(n, int(cfg.train.batch_size), int(cfg.train.nproc), ghost,
                     has_norm(cfg.variant) and cfg.variant.norm in BATCH_STAT_NORMS, str(cfg.bn.ghost_stats))
    try:
        check_warmup(cfg.optim, steps_per_epoch(n, int(cfg.train.batch_size)), int(cfg.train.epochs))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def epoch_row(epoch: int, train: Dict[str, float], val: Dict[str, float], test: Dict[str, float], lr: float,
              steps: int, epoch_time: float, n_train: int) -> Dict[str, Any]:
    """One per-epoch metrics row, as records and results.csv store it (epoch_time_s in wall seconds)."""
    return {"epoch": epoch, "train_loss": train["train_loss"], "train_acc": train["train_acc"],
            "val_loss": val["loss"], "val_acc": val["acc"], "test_loss": test["loss"], "test_acc": test["acc"],
            "lr": lr, "steps": steps, "epoch_time_s": epoch_time,
            "samples_per_s": n_train / epoch_time if epoch_time > 0 else float("nan")}


def preflight(cfg) -> DataSplits:
    """Every check before training, data included (files present, batch no larger than the training split);
    returns the loaded data so the run need not load it again."""
    validate_config(cfg)
    data = load_data(cfg.dataset)
    check_data(cfg, data)
    return data


def run_experiment(cfg, on_epoch: Optional[EpochCallback] = None, data: Optional[DataSplits] = None,
                   on_run_epoch: Optional[Callable[[int, Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Train one configuration; returns status ('ok' | 'diverged'), per-epoch metrics and the parameter count.
    Every random stream is derived from cfg.seed alone, so variants of one model with one seed share the init of
    every conv/linear layer and see the same batches in the same order (paired comparisons)."""
    return train_runs([cfg], on_epoch, data, on_run_epoch)[0]


def run_packed(cfgs: Sequence[DictConfig], on_epoch: Optional[EpochCallback] = None,
               data: Optional[DataSplits] = None,
               on_run_epoch: Optional[Callable[[int, Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """Train len(cfgs) ≥ 2 runs that differ only in seed (and lr) as one pack; one result per config, shaped like
    run_experiment's plus pack_size. Raises ConfigError when they cannot pack (pack.packable says why).
    on_epoch(row) gets the first run's row (progress); on_run_epoch(i, row) every run's (trackers)."""
    reason = packable(cfgs)
    if reason:
        raise ConfigError(f"cannot pack these runs: {reason}.")
    return train_runs(cfgs, on_epoch, data, on_run_epoch)


def train_runs(cfgs: Sequence[DictConfig], on_epoch: Optional[EpochCallback] = None,
               data: Optional[DataSplits] = None,
               on_run_epoch: Optional[Callable[[int, Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """The one training driver: K ≥ 1 runs of one architecture (K > 1 only for configs pack.packable accepts),
    trained by the one epoch loop and evaluated by the one evaluation. K = 1 calls the model itself (LoneRun), with
    every lone-only option (fine-tuning, compile, channels_last, PreciseBN); K > 1 a PackedModel. Each run keeps its
    seed's init, batch order and augmentation stream; a pack's timing is shared (each run is charged time / K)."""
    return run_to_end(train_epochs(cfgs, on_epoch, data, on_run_epoch))


def run_to_end(training: Generator[List[List[Dict[str, Any]]], bool, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """Drive train_epochs to its last epoch; its results."""
    try:
        next(training)
        while True:
            training.send(False)
    except StopIteration as done:
        return done.value


def train_epochs(cfgs: Sequence[DictConfig], on_epoch: Optional[EpochCallback] = None,
                 data: Optional[DataSplits] = None,
                 on_run_epoch: Optional[Callable[[int, Dict[str, Any]], None]] = None, resumable: bool = True
                 ) -> Generator[List[List[Dict[str, Any]]], bool, List[Dict[str, Any]]]:
    """train_runs one epoch at a time: yields each run's metric rows so far after every epoch (the last included);
    sending True stops the training there, the runs still training marked status `pruned` (a tuning study's pruner,
    bnablate/tune_trials.py). Returns train_runs' results. With train.checkpoint (a lone run; resumable=False turns
    it off, for a study's trials, which yield every epoch to their pruner) the run's state is saved after every epoch
    and a saved state resumes it: the epochs before it are neither trained nor yielded again (train/resume.py)."""
    for c in cfgs:
        validate_config(c)
    cfg, k = cfgs[0], len(cfgs)
    if int(cfg.train.nproc) > 1 and not is_worker():  # K = 1: packable() refuses data-parallel runs
        return [launch(cfg, on_epoch, on_run_epoch)]  # its workers come back here, inside the process group
    device = configure_device(cfg)
    seeds = [int(c.seed) for c in cfgs]
    torch.manual_seed(derive_seed(seeds[0], "torch"))  # dropout masks come from the global stream (lone runs only)

    if data is None:
        data = load_data(cfg.dataset)
    check_data(cfg, data)
    data = data.to(device)
    # channels_last only changes the memory layout of the images (same values, same shapes)
    data = replace(data, **{f: prepare_inputs(getattr(data, f), cfg.train) for f in ("train_x", "val_x", "test_x")})
    memory = TrainingMemory(device)  # training's needs beyond the data: parameters, gradients, optimizer, activations
    models = [build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, s, bn=cfg.bn).to(device)
              for s in seeds]
    for m in models:  # ghost layers under bn.ghost_stats=step cut every batch as this process's share is cut
        set_ghost_chunks(m, int(cfg.train.batch_size) // int(cfg.train.nproc))
    pretrained = None
    if cfg.finetune.source is not None:  # K = 1: packable() refuses fine-tuning
        pretrained = prepare_finetune(cfg, models[0], data, device)  # may pretrain (its own streams), or load
        torch.manual_seed(derive_seed(seeds[0], "torch"))  # so dropout masks do not depend on whether it pretrained
    amp = amp_dtype(cfg.train)
    bn_eval = cfg.finetune.source is not None and cfg.finetune.bn == "freeze"
    if device.type != "cuda":  # a copy trains a few steps under a live-tensor count (memory.py); CUDA measures below
        probe = _run_set(cfgs, [copy.deepcopy(m) for m in models], probe=True)
        memory.probe(lambda: train_one_epoch(
            probe[0], probe[1], data.train_x, data.train_y, int(cfg.train.batch_size),
            [torch.Generator().manual_seed(0)] * k, amp=amp, bn_eval=bn_eval, max_steps=PROBE_STEPS,
            step=None if probe[2].uniform else probe[2].step), run_set_bytes(probe[0]))
        del probe
    runs, opt, lrs = _run_set(cfgs, models)
    # a warm-up wraps the step, and so does a schedule counting optimizer steps
    schedule = LRSchedule(opt, cfg.optim, int(cfg.train.epochs),
                          steps_per_epoch(len(data.train_x), int(cfg.train.batch_size)),
                          None if lrs.uniform else lrs.step)
    step = schedule.step
    grad_probe = Probe(models[0]) if cfg.train.probe else None  # train.probe (K = 1: packable() refuses it)
    g_batches = [generator(s, "batches") for s in seeds]
    g_augment = [generator(s, "augment", device=device) for s in seeds] if data.augment else None
    g_precise = generator(seeds[0], "precise_bn")

    metrics: List[List[Dict[str, Any]]] = [[] for _ in seeds]
    # each run's (N_test,) bool test mask at its last recorded epoch (a diverged run's: where it diverged), on device
    last_correct: List[Optional[torch.Tensor]] = [None] * k
    status, steps = ["ok"] * k, 0
    streams = {"batches": g_batches[0], "precise_bn": g_precise, **({"augment": g_augment[0]} if g_augment else {})}
    saved = resume_at(cfgs, resumable)  # (checkpoint path, run key) of a checkpointed lone run, else None
    start = 1
    if saved is not None and (state := resume.load(*saved)) is not None:
        done = resume.restore(state, models[0], opt, schedule, streams)
        metrics, status, steps, start = [done.metrics], [done.status], done.steps, done.epoch + 1
        last_correct = [None if done.last_correct is None else done.last_correct.to(device)]
        if done.peak_bytes is not None:  # CUDA's peak over the epochs before the stop, too
            memory.peak_bytes = max(memory.peak_bytes or 0, done.peak_bytes)
        if done.status != "ok":
            start = int(cfg.train.epochs) + 1
    for epoch in range(start, int(cfg.train.epochs) + 1):
        lr = opt.param_groups[0]["lr"]
        if grad_probe is not None:
            grad_probe.at(epoch, steps + 1)
        tr, epoch_time = timed(lambda: memory.track(lambda: train_one_epoch(
            runs, opt, data.train_x, data.train_y, int(cfg.train.batch_size), g_batches, g_augment, amp=amp,
            bn_eval=bn_eval, step=step, probe=grad_probe)), device)
        steps += tr["steps"]
        val, test = evaluate_epoch(runs, data, cfg, g_precise, amp)
        correct = test.pop("correct")  # (K, N_test) bool
        for i in range(k):
            if status[i] != "ok":
                continue  # a diverged run stopped (in a pack its slice keeps computing, touching nobody else's)
            metrics[i].append(epoch_row(epoch, {n: tr[n][i] for n in ("train_loss", "train_acc")},
                                        {n: v[i] for n, v in val.items()}, {n: v[i] for n, v in test.items()},
                                        lrs.lr(i, lr), steps, epoch_time / k, len(data.train_x)))
            last_correct[i] = correct[i]
            if on_run_epoch is not None:
                on_run_epoch(i, metrics[i][-1])
            if not math.isfinite(tr["train_loss"][i]):
                status[i] = "diverged"  # non-finite training loss: stop this run, the sweep goes on
        if on_epoch is not None:
            on_epoch(metrics[0][-1] if metrics[0] else {"epoch": epoch})
        if all(s != "ok" for s in status):
            break
        schedule.end_epoch()
        if saved is not None:  # before the yield: whoever drives this may stop it there for good
            resume.save(saved[0], saved[1], resume.Progress(epoch, steps, status[0], metrics[0],
                                                            last_correct[0].cpu(), memory.peak_bytes),
                        models[0], opt, schedule, streams)
        if (yield metrics) and epoch < int(cfg.train.epochs):  # stopped before its last epoch: pruned there
            status = ["pruned" if s == "ok" else s for s in status]
            break
    shared = {"n_params": count_params(models[0]), "device": str(device), "n_train": len(data.train_x),
              "n_val": len(data.val_x), "n_test": len(data.test_x), "peak_mem_mb": memory.per_run_mb(k),
              # which data it saw, and the training split's per-channel statistics every split was normalized with
              "data": {"fingerprint": data.fingerprint, "mean": list(data.mean), "std": list(data.std),
                       "path": data.path}}  # path: in memory, or streamed from disk (data/stream.py)
    info = {**execution_info(cfg, device), "memory_measure": memory.measure}
    if start > 1:  # resumed from train.checkpoint's state: its wall time counts from here, its epochs' times stay
        info["resumed_after_epoch"] = start - 1
    masks = torch.stack(last_correct).cpu()  # (K, N_test): one device read for the whole training
    if k == 1:
        result = {"status": status[0], "metrics": metrics[0], **shared, "test_correct": encode_correct(masks[0]),
                  "execution": info}
        if pretrained is not None:
            result["pretrain"] = pretrained
        if grad_probe is not None:
            grad_probe.close()
            result["probe"] = grad_probe.rows
        return [result]
    return [{"status": status[i], "metrics": metrics[i], **shared, "test_correct": encode_correct(masks[i]),
             "pack_size": k, "execution": {**info, "pack_impl": runs.impl}} for i in range(k)]


def resume_at(cfgs: Sequence[DictConfig], resumable: bool) -> Optional[Tuple[Path, str]]:
    """(checkpoint path, run key) when this training checkpoints: a lone run with train.checkpoint, else None."""
    cfg = cfgs[0]
    if not (resumable and cfg.train.checkpoint and len(cfgs) == 1):
        return None
    from ..config import to_plain
    from ..results import run_key

    key = run_key(to_plain(cfg))
    return resume.resume_path(str(cfg.out_dir), key), key


def _run_set(cfgs: Sequence[DictConfig], models: List[torch.nn.Module], probe: bool = False) -> tuple:
    """(run set, optimizer, per-run lr) for these models: for K = 1 a LoneRun (channels_last / torch.compile; the
    step model shares the parameters with models[0]; fine-tuning's frozen parameters left out), or this process's
    DataParallelRun inside a data-parallel run; else a PackedModel. probe: a throwaway copy for the memory probe,
    trained as the plain module."""
    cfg = cfgs[0]
    if len(models) == 1:
        model = models[0] if probe else prepare_model(models[0], cfg.train)
        if is_worker() and not probe:
            runs = DataParallelRun(model, trainable_parameters(models[0]), sync_bn=bool(cfg.bn.sync))
        else:
            runs = LoneRun(model, trainable_parameters(models[0]))
    else:
        runs = PackedModel(models, impl=str(cfg.pack_impl))
    opt = build_optimizer(runs.parameters(), cfg.optim, int(cfg.train.batch_size), model=models[0])
    lrs = PerRunLR(runs.parameters(), [effective_lr(c.optim, int(c.train.batch_size)) for c in cfgs])
    return runs, opt, lrs


def evaluate_epoch(runs, data: DataSplits, cfg, g_precise, amp: Optional[torch.dtype] = None) -> tuple:
    """Validation and test metrics with the statistics bn.eval_stats names: running (eval mode); batch (train mode
    under no_grad, in batches of train.batch_size as a loader built like the training one would give, moving the
    running statistics); precise (PreciseBN over bn.precise_batches training batches first, then eval mode);
    precise_nodrop (the same with dropout off during the recomputation); population (PreciseBN with ghost batches
    off). The test metrics carry "correct", which test examples each run got right ((K, N_test) bool, on the
    device)."""
    mode = cfg.bn.eval_stats
    if mode in RECOMPUTED:
        precise_bn(runs.module, data.train_x, int(cfg.train.batch_size), int(cfg.bn.precise_batches), g_precise,
                   dropout=mode != "precise_nodrop", ghost=mode != "population")
    size, stats = eval_batch(cfg)
    return (evaluate(runs, data.val_x, data.val_y, size, bn_stats=stats, amp=amp),
            evaluate(runs, data.test_x, data.test_y, size, bn_stats=stats, amp=amp, masks=True))


def eval_batch(cfg) -> Tuple[int, str]:
    """(evaluation batch size, the statistics `evaluate` normalizes with): bn.eval_stats=batch evaluates in batches of
    train.batch_size with batch statistics, every other mode in train.eval_batch_size batches in eval mode."""
    if cfg.bn.eval_stats == "batch":
        return int(cfg.train.batch_size), "batch"
    return int(cfg.train.eval_batch_size), "running"
