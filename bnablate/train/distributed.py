"""Data-parallel training of one run (train.nproc > 1): torch.distributed's DDP, launched by torchrun's own engine.

The run's process starts train.nproc workers with `torch.distributed.launcher.api.elastic_launch` (what `torchrun`
runs; gloo on CPU, NCCL on CUDA, a rendezvous on a free localhost port). Every worker loads the data, builds the same
model from the same seed and draws the same batch order; worker r trains the r-th contiguous share of each batch
(train.batch_size is the optimization batch, train.batch_size / nproc the per-process batch), so its BN normalizes
over its share alone (local BN; `bn.sync=true` converts it to SyncBatchNorm on CUDA). DDP averages the gradients.
A batch of k·g samples over k processes is then what `bn.ghost_batch_size=g` computes in one process; the weights
agree to float tolerance (tests/test_distributed.py). The running statistics are rank 0's share's (DDP broadcasts rank
0's buffers before each forward, its default): what ghost BN keeps under `bn.ghost_stats=step`, which also cuts the
epoch's last, smaller batch as tensor_split does here, so weights, buffers and accuracy agree end to end (under the
default `chunk`, ghost BN folds in every chunk and cuts full chunks and a remainder). Rank 0's
result is the run's; the calling process writes the one record, so resume and verify treat it like any run.
Per-epoch callbacks (progress, trackers) are replayed from rank 0's rows when the run ends."""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import BATCH_STAT_NORMS, has_norm
from .execution import resolve_device
from .loop import LoneRun
from .threads import auto_threads, usable_cores


def available_workers(device: torch.device) -> int:
    """How many processes a run may use: CUDA devices on CUDA, the CPU cores this process may run on otherwise."""
    if device.type == "cuda":
        return torch.cuda.device_count()
    return usable_cores()


def validate_distributed(cfg) -> None:
    """train.nproc and bn.sync: raises ConfigError naming the fix."""
    nproc, sync, batch = int(cfg.train.nproc), bool(cfg.bn.sync), int(cfg.train.batch_size)
    device = resolve_device(cfg.device)
    if nproc < 1:
        raise ConfigError(f"train.nproc must be ≥ 1 (the number of data-parallel processes), got {nproc}.")
    if sync and device.type != "cuda":
        raise ConfigError(
            "bn.sync=true needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only. On a CPU, simulate it instead: "
            "unsynchronised BN over k devices is bn.ghost_batch_size=train.batch_size/k in one process, and "
            "synchronised BN is plain BN over the whole batch (bn.ghost_batch_size=null, bn.sync=false).")
    if sync and nproc == 1:
        raise ConfigError("bn.sync=true with train.nproc=1 has no other process to synchronise with: one process "
                          "already normalizes over the whole batch. Use train.nproc=2 or more, or bn.sync=false.")
    if sync and (cfg.bn.ghost_batch_size is not None or cfg.variant.norm != "batch"):
        raise ConfigError("bn.sync=true converts plain BatchNorm (variant.norm=batch, bn.ghost_batch_size=null) to "
                          "SyncBatchNorm; ghost batches, Batch Renorm and the other norms have no synchronised form "
                          "here. Use bn.sync=false, or variant.norm=batch without ghost batches.")
    if nproc == 1:
        return
    cap = available_workers(device)
    if nproc > cap:
        what = "CUDA devices" if device.type == "cuda" else "CPU cores"
        share = batch // nproc
        simulate = (f", or simulate {nproc} devices' local BN in one process with bn.ghost_batch_size={share}"
                    if batch % nproc == 0 and share >= 2 else "")
        raise ConfigError(f"train.nproc={nproc} is more than the {cap} {what} here: each process needs its own. Use "
                          f"train.nproc≤{cap}{simulate}.")
    if batch % nproc:
        raise ConfigError(f"train.batch_size={batch} must split evenly over train.nproc={nproc} processes (each "
                          f"trains batch/nproc samples of every step); use a multiple of {nproc}.")
    if batch // nproc < 2 and cfg.variant.norm in BATCH_STAT_NORMS and has_norm(cfg.variant):
        raise ConfigError(f"train.batch_size={batch} over train.nproc={nproc} leaves {batch // nproc} sample per "
                          f"process, and BN cannot normalize one sample: use train.batch_size≥{2 * nproc}.")
    if cfg.finetune.source is not None or bool(cfg.train.compile):
        what = "fine-tuning (finetune.source)" if cfg.finetune.source is not None else "train.compile"
        raise ConfigError(f"{what} trains in one process here; use train.nproc=1 for it.")


def check_last_batch(n: int, batch: int, nproc: int, ghost: Optional[int], batch_norm: bool,
                     ghost_stats: str = "chunk") -> None:
    """When BN trains, no normalization group of the epoch's last, smaller batch may hold a single sample (it has no
    variance): neither a process's share (train.nproc) nor a ghost batch's remainder chunk (bn.ghost_stats=chunk) or
    near-equal part (step: each share cut into as many parts as a full share makes ghost batches)."""
    last = n % batch
    if last == 1 and n > batch:
        last = batch + 1  # batch_indices folds a trailing single sample into the batch before it
    if not batch_norm or not last:
        return
    if nproc > 1 and last // nproc < 2:
        raise ConfigError(f"The epoch's last batch has {last} of the {n} training images, which leaves fewer than 2 "
                          f"per process over train.nproc={nproc}: BN cannot normalize one sample. Choose "
                          f"train.batch_size so that {n} % batch_size is 0 or at least {2 * nproc}.")
    share = -(-last // nproc)  # the largest share (tensor_split's first)
    if ghost is not None and ghost_stats == "step":
        per_process = -(-(batch // nproc) // ghost)  # the ghost batches of a process's full share (set_ghost_chunks)
        parts = nproc * per_process
        if (last // nproc) // per_process < 2:  # the smallest share's smallest part
            raise ConfigError(f"The epoch's last batch has {last} of the {n} training images: bn.ghost_stats=step "
                              f"cuts it into {parts} near-equal parts, as {parts} processes would share it, leaving "
                              f"fewer than 2 samples in a part, and BN cannot normalize one sample. Choose "
                              f"train.batch_size so that {n} % batch_size is 0 or at least {2 * parts}, or a larger "
                              f"bn.ghost_batch_size.")
    elif ghost is not None and share > ghost and share % ghost == 1:
        raise ConfigError(f"The epoch's last batch has {last} of the {n} training images: ghost batches of "
                          f"{ghost} leave a last chunk of one sample, and BN cannot normalize one sample. Choose "
                          f"another bn.ghost_batch_size or train.batch_size (so that {n} % batch_size is not 1 more "
                          f"than a multiple of {ghost}).")


def is_worker() -> bool:
    """True inside a data-parallel worker (the process group is up)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class DataParallelRun(LoneRun):
    """This process's part of a data-parallel run, for the one epoch loop. The loop hands every process the whole
    batch (so augmentation draws the same numbers as one process would); the forward takes this rank's contiguous
    share, so BN sees its share only, as on a device of its own. The training loss and hits the loop logs are the
    whole batch's (one all-reduce each), so every process logs, and stops on divergence, alike; the gradient is this
    share's, which DDP averages. Evaluation (shared_input) runs the plain module on the whole split."""

    def __init__(self, model: nn.Module, params: Optional[List[nn.Parameter]] = None, sync_bn: bool = False) -> None:
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        device = next(model.parameters()).device
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        super().__init__(ddp, params if params is not None else list(model.parameters()))
        self.plain = model

    @property
    def module(self) -> nn.Module:
        return self.plain

    def share(self, t: Tensor) -> Tensor:
        """This rank's rows of a whole batch: the r-th of nproc contiguous, near-equal parts."""
        return t.tensor_split(self.world)[self.rank]

    def __call__(self, x: Tensor, shared_input: bool = False) -> Tensor:
        return self.plain(x) if shared_input else self.model(self.share(x))

    def _all_summed(self, t: Tensor) -> Tensor:
        total = t.detach().clone().reshape(1)
        dist.all_reduce(total)
        return total[0]

    def mean_losses(self, out: Tensor, y: Tensor) -> Tensor:
        """Valued as the whole batch's mean loss; differentiates as this share's (DDP averages the shares)."""
        mine = self.share(y)
        local = F.cross_entropy(out, mine)
        whole = self._all_summed(local * len(mine)) / len(y)
        return local + (whole - local).detach()

    def hits(self, out: Tensor, y: Tensor) -> Tensor:
        return self._all_summed((out.argmax(-1) == self.share(y)).sum())


def _worker(container: Dict[str, Any], threads: int) -> Optional[Dict[str, Any]]:
    """One process of a data-parallel run (torchrun's launcher calls it with its environment set); an exception's
    message reaches the launching process through elastic's error file."""
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(_train_share)(container, threads)


def _train_share(container: Dict[str, Any], threads: int) -> Optional[Dict[str, Any]]:
    from .runner import train_runs  # the runner imports this module

    cuda = torch.cuda.is_available() and resolve_device(container["device"]).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        container["device"] = f"cuda:{os.environ['LOCAL_RANK']}"
    container["threads"] = threads
    container["logger"]["backends"] = []  # the launching process logs the run (its checks already ran there)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        result = train_runs([OmegaConf.create(container)])[0]
        rank = dist.get_rank()
    finally:
        dist.destroy_process_group()
    return result if rank == 0 else None


def run_workers(fn: Callable[..., Any], nproc: int, *args: Any) -> Dict[int, Any]:
    """fn(*args) in nproc fresh processes under torchrun's launcher (elastic_launch; spawned, so fn must be importable
    and a script that calls this needs the `if __name__ == "__main__":` guard); returns {rank: fn's return}. A
    worker's exception becomes a RuntimeError carrying its message."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0",  # port 0: a free one, chosen by the OS
                          max_restarts=0)  # a failed worker fails the run (a failed row), it is not retried
    try:
        return elastic_launch(config, fn)(*args)
    except ChildFailedError as e:
        first = next(iter(e.failures.values()))
        raise RuntimeError(f"a data-parallel worker of {nproc} failed: {first.message}") from None


def launch(cfg, on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
           on_run_epoch: Optional[Callable[[int, Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Train cfg on cfg.train.nproc processes; returns rank 0's result, as run_experiment would."""
    nproc = int(cfg.train.nproc)
    device = resolve_device(cfg.device)
    # the run's threads (when threads=0: the cores free now, train/threads.py) shared among its processes, so they do
    # not oversubscribe
    total = int(cfg.threads) if int(cfg.threads) > 0 else auto_threads()
    result = run_workers(_worker, nproc, OmegaConf.to_container(cfg, resolve=True), max(total // nproc, 1))[0]
    result["execution"].update(world_size=nproc, per_device_batch=int(cfg.train.batch_size) // nproc,
                               dist_backend="nccl" if device.type == "cuda" else "gloo",
                               sync_bn=bool(cfg.bn.sync))
    for row in result["metrics"]:  # the workers' epochs, now that they are over (see the module docstring)
        if on_run_epoch is not None:
            on_run_epoch(0, row)
        if on_epoch is not None:
            on_epoch(row)
    return result


__all__ = ["DataParallelRun", "check_last_batch", "is_worker", "launch", "run_workers", "validate_distributed"]
