"""Peak training memory of a run: CUDA's peak allocation over every epoch, or on a CPU a live-tensor count of a probe."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple, TypeVar

import torch
from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

T = TypeVar("T")
MiB = 2**20
PROBE_STEPS = 3  # the first step allocates the optimizer's state; the next ones are the steady state
# How a record's peak_mem_mb was measured (its provenance names the one used: `memory_measure`).
MEASURES = {
    "cuda_max_allocated": "torch.cuda.max_memory_allocated over every training epoch, less what was allocated before "
                          "the models were built (the data): parameters, gradients, optimizer state and activations",
    "cpu_tensor_probe": f"a copy of the run trains {PROBE_STEPS} steps before the run itself, while a "
                        "TorchDispatchMode counts the bytes of every tensor storage the steps create until it is freed; "
                        "the peak, plus the parameters' and buffers' bytes, covers the same quantities as on CUDA "
                        "(the allocator's own overhead and kernels' scratch buffers are not seen)",
    "unavailable": "not measured (the probe could not run this configuration): the column is empty",
}


class LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of the tensor storages that ops create while it is active, until each is freed; `peak` is the
    most alive at once. Storages that existed before (parameters, data) and views of a storage count once or not at
    all. Exact for what ATen allocates as tensors; blind to memory a kernel allocates outside them."""

    def __init__(self) -> None:
        super().__init__()
        self.live: Dict[Tuple[int, int], Tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:  # freed since the last op
            self.current -= self.live.pop(key)[1]
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = (storage.data_ptr(), storage.nbytes())
                if key not in self.live:
                    self.live[key] = (StorageWeakRef(storage), storage.nbytes())
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
        return out


def run_set_bytes(runs) -> int:
    """Bytes of a run set's parameters and buffers: a LoneRun's module, or a PackedModel's stacked (K, ...) tensors."""
    if hasattr(runs, "params"):
        tensors = [*runs.params.values(), *runs.buffers.values()]
    else:
        tensors = [*runs.module.parameters(), *runs.module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class TrainingMemory:
    """The peak memory a run's training needs beyond its data (MiB): on CUDA measured over the real epochs
    (`track` each one), elsewhere by `probe` before training. `measure` names how (MEASURES)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.measure = "cuda_max_allocated" if self.cuda else "unavailable"
        self.peak_bytes: Optional[int] = None
        self._base = torch.cuda.memory_allocated(device) if self.cuda else 0  # the data, already on the device

    def track(self, fn: Callable[[], T]) -> T:
        """fn() (one training epoch), updating the CUDA peak."""
        if not self.cuda:
            return fn()
        torch.cuda.reset_peak_memory_stats(self.device)
        out = fn()
        peak = torch.cuda.max_memory_allocated(self.device) - self._base
        self.peak_bytes = max(self.peak_bytes or 0, peak)
        return out

    def probe(self, train_copy: Callable[[], Any], held: int) -> None:
        """CPU: run train_copy() (PROBE_STEPS steps of a copy of the run set, built beforehand with its optimizer)
        under LiveTensorBytes, with the global RNG restored afterwards (the run's dropout masks do not move); held:
        the bytes of the copy's parameters and buffers, alive throughout."""
        if self.cuda:
            return
        try:
            with torch.random.fork_rng(devices=[]), LiveTensorBytes() as live:
                train_copy()
        except Exception:  # noqa: BLE001  (a layer the mode cannot follow: the column stays empty, the run goes on)
            return
        self.peak_bytes, self.measure = held + live.peak, "cpu_tensor_probe"

    def per_run_mb(self, k: int) -> Optional[float]:
        """A pack's peak is charged to its K runs like its time."""
        return None if self.peak_bytes is None else self.peak_bytes / k / MiB


__all__ = ["LiveTensorBytes", "MEASURES", "PROBE_STEPS", "TrainingMemory", "run_set_bytes"]
