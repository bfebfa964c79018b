"""The streaming path: images that stay on disk, decoded batch by batch through a DataLoader with workers.

A dataset whose decoded float32 images would exceed `dataset.max_memory_mb` is not loaded into memory: its splits are
`ImageFiles`, a tensor-like view (N, C, H, W) of image files that the rest of bnablate indexes as it indexes the
in-memory tensors (`x[idx]` for a batch, `x[a:b]` for an evaluation slice, `index_select` for the splits), so the one
epoch loop and the one evaluation serve both paths. Each epoch's batch order is drawn exactly as in memory
(`loop.epoch_batches`) and handed to `prefetch`, which starts a torch DataLoader over those index batches
(`batch_sampler`, in that order; `dataset.workers` processes decode ahead); `x[idx]` then takes the next decoded batch.
Decoding and resizing are the in-memory loader's own (`own.decode_image`), and each batch is normalized with the same
float32 operations, so a streamed run equals the in-memory one to float tolerance: the training split's per-channel
mean and std come from a float64 pass over the files instead of one float32 reduction over the whole tensor
(tests/test_stream.py). The same pass feeds the data fingerprint the bytes the in-memory path hashes, so both paths
record the same fingerprint."""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

Sample = Tuple[str, int]  # (file, label)
Decoder = Callable[[str], Tensor]  # file → (C, H, W) uint8

# Rows decoded per chunk when a split is read in order (statistics, fingerprint): ~25 MB of 32×32 RGB floats.
CHUNK = 4096


class _Rows(torch.utils.data.Dataset):
    """Row i of an ImageFiles as a (C, H, W) uint8 tensor, for the DataLoader's workers (picklable: files + decoder)."""

    def __init__(self, files: List[str], decode: Decoder) -> None:
        self.files, self.decode = files, decode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor:
        return self.decode(self.files[i])


class ImageFiles:
    """A lazy (N, C, H, W) stack of images on disk: decoded when indexed; normalized (float32) once `normalized`
    gave it the training split's statistics, uint8 before."""

    def __init__(self, files: Sequence[str], chw: Tuple[int, int, int], decode: Decoder, workers: int = 0,
                 rows: Optional[Tensor] = None, stats: Optional[Tuple[Tensor, Tensor]] = None,
                 device: torch.device = torch.device("cpu")) -> None:
        self.files, self.chw, self.decode, self.workers = list(files), tuple(chw), decode, int(workers)
        self.rows = torch.arange(len(self.files)) if rows is None else rows  # which files, in this view's order
        self.stats = stats  # (mean (C,), std (C,)) float32, or None: raw uint8 pixels
        self.device = device
        self._ahead: Optional[Iterator[Tensor]] = None
        self._expected: deque = deque()

    # --- the tensor interface the data splits and the loop use ---------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.chw))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.stats is not None else torch.uint8

    def dim(self) -> int:
        return 4

    def _view(self, rows: Tensor) -> "ImageFiles":
        return ImageFiles(self.files, self.chw, self.decode, self.workers, rows, self.stats, self.device)

    def index_select(self, dim: int, index: Tensor) -> "ImageFiles":
        assert dim == 0, "images are selected by row"
        return self._view(self.rows.index_select(0, index.cpu()))

    def to(self, device: Union[str, torch.device], *args, **kwargs) -> "ImageFiles":
        moved = self._view(self.rows)
        moved.device = torch.device(device) if not isinstance(device, torch.dtype) else self.device
        return moved

    def contiguous(self, memory_format=torch.contiguous_format) -> "ImageFiles":
        return self  # batches are made fresh and contiguous

    def normalized(self, mean: Tensor, std: Tensor) -> "ImageFiles":
        view = self._view(self.rows)
        view.stats = (mean.float(), std.float())
        return view

    def __getitem__(self, idx: Union[Tensor, slice]) -> Tensor:
        """Rows idx ((B,) or (K, B) tensor, or a slice) decoded as (B, C, H, W) / (K, B, C, H, W) on self.device."""
        flat = (torch.arange(len(self))[idx] if isinstance(idx, slice) else idx.cpu()).reshape(-1)
        if self._expected and torch.equal(self._expected[0], flat):
            self._expected.popleft()
            x = next(self._ahead)  # type: ignore[arg-type]
        else:
            x = self._decode_rows(flat)
        x = self._finish(x)
        shape = idx.shape if isinstance(idx, Tensor) else flat.shape
        return x.view(*shape, *self.chw)

    # --- decoding ahead --------------------------------------------------------------------------------------------
    def prefetch(self, batches: Sequence[Union[Tensor, slice]]) -> None:
        """Start decoding these batches, in this order, in `workers` DataLoader processes (0: in this process, when
        each is asked for); x[b] for each b in turn then returns them."""
        flats = [(torch.arange(len(self))[b] if isinstance(b, slice) else b.cpu()).reshape(-1) for b in batches]
        if not flats:
            return
        loader = torch.utils.data.DataLoader(
            _Rows([self.files[int(r)] for r in self.rows], self.decode),
            batch_sampler=[f.tolist() for f in flats],  # the epoch's own order: bnablate draws it, not the loader
            num_workers=self.workers, persistent_workers=False,
            prefetch_factor=2 if self.workers else None)
        self._ahead, self._expected = iter(loader), deque(flats)

    def _decode_rows(self, positions: Tensor) -> Tensor:
        files = [self.files[int(self.rows[int(p)])] for p in positions]
        return torch.stack([self.decode(f) for f in files]) if files else torch.empty(0, *self.chw, dtype=torch.uint8)

    def _finish(self, x: Tensor) -> Tensor:
        """uint8 (B, C, H, W) → the in-memory path's numbers: float32, minus mean, divided by std, in place."""
        if self.stats is None:
            return x.to(self.device)
        mean, std = self.stats
        x = x.to(torch.float32)
        x.sub_(mean[None, :, None, None]).div_(std[None, :, None, None])
        return x.to(self.device)

    def chunks(self) -> Iterator[Tensor]:
        """The raw uint8 rows in order, CHUNK at a time, decoded ahead by the workers (statistics, fingerprint)."""
        starts = list(range(0, len(self), CHUNK))
        batches = [torch.arange(s, min(s + CHUNK, len(self))) for s in starts]
        raw = self._view(self.rows)
        raw.stats = None
        raw.prefetch(batches)
        for b in batches:
            yield raw[b]


def channel_stats(x: ImageFiles) -> Tuple[Tensor, Tensor]:
    """(mean, std) per channel of a split's raw pixels, float64 sums over every pixel (std unbiased, as torch's)."""
    c = x.chw[0]
    total, sq, n = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0
    for chunk in x.chunks():
        v = chunk.to(torch.float64).transpose(0, 1).reshape(c, -1)  # (C, rows·H·W)
        total += v.sum(1)
        sq += (v * v).sum(1)
        n += v.shape[1]
    mean = total / n
    var = (sq - n * mean * mean) / max(n - 1, 1)
    return mean.float(), var.clamp_min(0).sqrt().float()


def resident_bytes(x) -> int:
    """Bytes a split holds in memory: the tensor's, or 0 for images streamed from disk."""
    return 0 if isinstance(x, ImageFiles) else x.numel() * x.element_size()


__all__ = ["ImageFiles", "channel_stats", "resident_bytes"]
