"""Run claims: an atomically created lock file per run key, so two sweeps sharing a folder never train a run twice.

A claim is `records/<key>.lock`, created with O_CREAT|O_EXCL (atomic on local and NFSv3+ filesystems) and holding
the owner's host, pid and start time; the owner touches it after every epoch. A claim is stale — and is taken over —
when its owner is a dead process on this host, or when it has not been touched for STALE_SECONDS (owner on another
host that died without releasing it)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

from .records import RECORDS_DIR, now

STALE_SECONDS = 1800.0  # no heartbeat for 30 min from another host: its owner is gone


def lock_path(out_dir: Path, key: str) -> Path:
    return Path(out_dir) / RECORDS_DIR / f"{key}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def is_stale(path: Path) -> bool:
    try:
        info = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return True  # unreadable or vanished: a half-created claim from a killed process
    if info.get("host") == socket.gethostname():
        return not _pid_alive(int(info.get("pid", -1)))
    return age > STALE_SECONDS


def claim(out_dir: Path, key: str) -> Optional[Path]:
    """The lock path if this process now owns the run, None if a live owner holds it."""
    return claim_path(lock_path(out_dir, key))


def claim_path(path: Path) -> Optional[Path]:
    """Claim any lock file (a run's, a tuning trial's): path if this process now owns it, None if a live owner
    holds it; a stale claim is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):  # second try after removing a stale claim
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not is_stale(path):
                return None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "claimed_at": now()}, f)
        return path
    return None


def heartbeat(path: Optional[Path]) -> None:
    if path is not None:
        try:
            os.utime(path)
        except OSError:
            pass


def release(path: Optional[Path]) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
