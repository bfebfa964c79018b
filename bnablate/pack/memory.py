"""pack_size=auto: how many runs of one architecture fit in a pack, from the GPU's free memory and a one-step probe."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..data import dataset_shape
from ..models import build_model
from .model import PackedModel

CPU_PACK_SIZE = 8  # on a CPU memory is not the limit; packing only pays at small batch (docs/sweeps.md)
MAX_PACK_SIZE = 64  # beyond this one pack's kernels are large enough to fill the GPU
MEMORY_FRACTION = 0.8  # of the free memory, leaving room for the allocator's fragmentation and evaluation batches


def parse_pack_size(value) -> Optional[int]:
    """None for 'auto', else the integer (≥ 1); ValueError otherwise."""
    if str(value).lower() == "auto":
        return None
    size = int(str(value))  # ValueError for non-numbers
    if size < 1:
        raise ValueError(size)
    return size


def fit_pack_size(free_bytes: int, data_bytes: int, per_run_bytes: int, cap: int = MAX_PACK_SIZE) -> int:
    """Runs that fit: MEMORY_FRACTION of the free memory, less the pack's one copy of the dataset, divided by one
    run's share (parameters, gradients, optimizer state, activations of one step). At least 1, at most cap."""
    room = MEMORY_FRACTION * free_bytes - data_bytes
    return int(max(1, min(cap, room // max(per_run_bytes, 1))))


def probe_run_bytes(cfg, device: torch.device) -> int:
    """Peak CUDA memory of one Adam step of a pack of 2 minus a pack of 1 at the config's batch size (the marginal
    cost of one more run), on random inputs of the dataset's shape."""
    input_shape, num_classes = dataset_shape(cfg.dataset)
    bs = int(cfg.train.batch_size)

    def peak(k: int) -> int:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        pm = PackedModel([build_model(cfg.model, cfg.variant, input_shape, num_classes, seed=s).to(device)
                          for s in range(k)])
        opt = torch.optim.Adam(pm.parameters())
        x = torch.randn(k, bs, *input_shape, device=device)
        y = torch.randint(0, num_classes, (k, bs), device=device)
        F.cross_entropy(pm(x).reshape(k * bs, -1), y.reshape(-1)).backward()
        opt.step()  # allocates Adam's two moment buffers per parameter
        used = torch.cuda.max_memory_allocated(device) - base
        del pm, opt, x, y
        return used

    return max(peak(2) - peak(1), 1)


def auto_pack_size(cfg, device: torch.device, data_bytes: int,
                   probe: Callable[[object, torch.device], int] = probe_run_bytes) -> int:
    """The pack size for pack_size=auto: CPU_PACK_SIZE on a CPU; on CUDA what fits in free memory (fit_pack_size)."""
    if device.type != "cuda":
        return CPU_PACK_SIZE
    free, _total = torch.cuda.mem_get_info(device)
    return fit_pack_size(free, data_bytes, probe(cfg, device))
