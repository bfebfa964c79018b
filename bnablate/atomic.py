"""Atomic file writes (temp file in the same folder, fsync, os.replace): readers never see a half-written file."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Tuple

# O_EXCL: never opens a file that exists (a name collision fails instead of writing into another's temp file)
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _temp_file(path: Path) -> Tuple[int, str]:
    """A new temp file beside `path`, open for writing, created with mode 0o666 so that the kernel applies the
    process's umask (and a folder's default ACL) exactly as it does for open(path, "w"): results land with the
    permissions every other tool gives a new file (0644 under umask 022), a lab's shared folder stays readable, and
    no umask is read (os.umask can only be read by setting it, process-wide, a race with other threads).
    tempfile.mkstemp creates 0600 and has no mode argument, hence this. 16 random hex digits: a collision would
    need ~2**32 temp files in one folder at once."""
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp")
    return os.open(tmp, _FLAGS, 0o666), tmp


@contextmanager
def atomic_file(path: Path, mode: Optional[int] = None) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s content to; on a clean exit it replaces `path` in one rename, on any error
    (Ctrl-C included) the temp file is removed and `path` is left as it was. The temp file lives in the same folder
    because os.replace is atomic only within one filesystem; it is hidden (`.NAME.*.tmp`) so globs for the real
    files skip it. The file gets the mode open() would give under the umask; pass `mode` (e.g. 0o644 for a cache
    others share) to set it regardless of the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_file(path)
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
