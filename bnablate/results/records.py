"""Run records: one JSON file per run (resolved config, key, metrics, status, provenance), written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

from ..atomic import atomic_write_text
from ..config import CONF_DIR, NEUTRAL_VALUES, NON_RESULT_KEYS
from ..keys import drop_key, get_key, without

RECORDS_DIR = "records"
SCHEMA_VERSION = 2  # what write_record stamps; records without the field are version 1 (schema.py)


def run_key(plain_cfg: Dict[str, Any]) -> str:
    """Hash of everything in the resolved config that can change the numbers (seed included; paths, devices and
    sweep names excluded), so the same run is recognised in any sweep and skipped when already done."""
    cfg = drop_neutral(without(plain_cfg, NON_RESULT_KEYS))
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def drop_neutral(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """cfg (changed in place) without the keys at their neutral value: a run recorded before such a key existed ran
    at that value, and its config does not hold the key."""
    for k, neutral in NEUTRAL_VALUES.items():
        if get_key(cfg, k) == neutral:
            drop_key(cfg, k)
    return cfg


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CONF_DIR.parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: str) -> Dict[str, Any]:
    import torch
    import torchvision

    from .. import __version__

    info: Dict[str, Any] = {
        "bnablate": __version__, "git_sha": _git_sha(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "hostname": socket.gethostname(), "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    # Cluster runs: which job trained this record (set by SLURM and by submitit in the job's environment).
    for env, key in (("SLURM_JOB_ID", "slurm_job_id"), ("SLURM_ARRAY_TASK_ID", "slurm_array_task_id"),
                     ("SUBMITIT_EXECUTOR", "submitit_executor"), ("SUBMITIT_LOCAL_JOB_ID", "submitit_local_job_id")):
        if os.environ.get(env):
            info[key] = os.environ[env]
    return info


class OutputError(RuntimeError):
    """The output folder cannot take results; the message names the fix. Raised before any training."""


MIN_FREE_BYTES = 50 * 2**20  # a record is a few hundred kB at most; below 50 MB free a sweep would soon fail mid-way


def check_writable(out_dir: Path) -> None:
    """Create out_dir/records and write + delete a probe file there, and check free space, so an unwritable or full
    output folder fails before training rather than losing a finished run at its first write."""
    folder = Path(out_dir) / RECORDS_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-", suffix=".tmp")
        try:
            os.write(fd, b"0" * 4096)
        finally:
            os.close(fd)
            os.unlink(probe)
        free = shutil.disk_usage(folder).free
    except OSError as e:
        raise OutputError(f"Cannot write results to {folder} ({e.strerror or e}): choose a writable folder with "
                          f"out_dir=PATH, or fix that folder's permissions.") from None
    if free < MIN_FREE_BYTES:
        raise OutputError(f"Only {free / 2**20:.1f} MB free on the disk of {folder}; free some space or choose another "
                          f"disk with out_dir=PATH (records and tables need a few MB per sweep).")


def record_path(out_dir: Path, key: str) -> Path:
    return Path(out_dir) / RECORDS_DIR / f"{key}.json"


def write_record(out_dir: Path, record: Dict[str, Any]) -> Path:
    """Write the record atomically, stamped with the schema version this code writes (schema.py reads it back)."""
    path = record_path(out_dir, record["run_key"])
    atomic_write_text(path, json.dumps({"schema_version": SCHEMA_VERSION, **record}, indent=1, allow_nan=True))
    return path
