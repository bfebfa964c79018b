"""Atomic file writes (temp file in the same folder, fsync, os.replace): readers never see a half-written file."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Optional


@contextmanager
def atomic_file(path: Path, mode: Optional[int] = None) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s content to; on a clean exit it replaces `path` in one rename, on any error
    (Ctrl-C included) the temp file is removed and `path` is left as it was. The temp file lives in the same folder
    because os.replace is atomic only within one filesystem; it is hidden (`.NAME.*.tmp`) so globs for the real
    files skip it. mkstemp creates it 0600: pass `mode` (e.g. 0o644 for a cache others share) to widen that."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible (no empty file after a crash)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (atomic_file)."""
    with atomic_file(path) as f:
        f.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically (atomic_file)."""
    atomic_write(path, text.encode())
