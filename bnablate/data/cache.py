"""On-disk cache of decoded uint8 tensors, keyed by the source files' paths, sizes and mtimes."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable, List

import torch

from ..atomic import atomic_file
from .registry import RawData

VERSION = 1  # bump when the cached layout changes


def cache_key(name: str, files: List[Path], verify: bool) -> str:
    """16 hex chars over the format version, dataset, verify flag and each file's absolute path, size and mtime (ns)."""
    h = hashlib.sha256(f"{VERSION}:{name}:{verify}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cached_load(name: str, files: List[Path], cache_dir: str, verify: bool, load: Callable[[], RawData]) -> RawData:
    """Return the cached tensors if the source files are unchanged, else decode with `load` and cache the result.
    An unwritable cache folder only costs speed: it warns and carries on."""
    try:
        key = cache_key(name, files, verify)
    except OSError:
        return load()  # files absent: the loader raises the helpful error (or downloads)
    path = Path(os.path.expanduser(cache_dir)) / f"{name}-{key}.pt"
    try:
        if path.is_file():
            return RawData(**torch.load(path, weights_only=True))
    except Exception:  # noqa: BLE001  (a damaged or unreadable cache file is decoded again and rewritten)
        pass
    raw = load()
    try:
        with atomic_file(path, mode=0o644) as f:  # concurrent runs never read a half-written cache; 0644: shared
            torch.save(raw.__dict__, f)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as RuntimeError
        warnings.warn(f"could not cache {name} in {path.parent} ({e}); decoding from source each run.", stacklevel=2)
    return raw
