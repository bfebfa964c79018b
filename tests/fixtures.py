"""Test fixtures: tiny datasets in torchvision's formats (written by bnablate.data.fake_files), fake run records, and
reporters and claims that play another process sharing a sweep's folder."""

from __future__ import annotations

import functools

from bnablate.data.fake_files import write_cifar10, write_idx_images, write_idx_labels, write_mnist_like  # noqa: F401
from bnablate.sweeps import Reporter


@functools.lru_cache(maxsize=None)
def preset_plan(preset: str):
    """`plan_sweep(["sweep=PRESET"], validate_config)`, once per test process: the golden-key, expansion and sharing
    tests read the same plans (composing a 120-job grid takes seconds). Tests marked xdist_group("presets") run on
    one pytest-xdist worker, so they share it there too. The plan's configs must not be mutated."""
    from bnablate.sweep_plan import plan_sweep
    from bnablate.train import validate_config

    return plan_sweep([f"sweep={preset}"], validate_config)

def make_record(overrides, status="ok", val_accs=(0.5, 0.7), test_acc=None, epoch_time=0.5, steps_per_epoch=10):
    """A run record as execute_run writes it, with chosen per-epoch validation accuracies (test = val - 0.01 unless
    test_acc is given for the last epoch)."""
    from bnablate.config import compose_config, to_plain
    from bnablate.results import run_key

    plain = to_plain(compose_config(list(overrides)))
    metrics = []
    for i, a in enumerate(val_accs):
        last = i == len(val_accs) - 1
        metrics.append({"epoch": i + 1, "train_loss": 1.0 / (i + 1), "train_acc": a, "val_loss": 1.0, "val_acc": a,
                        "test_loss": 1.0, "test_acc": test_acc if (last and test_acc is not None) else a - 0.01,
                        "lr": 1e-3, "steps": steps_per_epoch * (i + 1), "epoch_time_s": epoch_time,
                        "samples_per_s": 100.0})
    return {"run_key": run_key(plain), "status": status, "error": "boom" if status == "failed" else None,
            "config": plain, "metrics": [] if status == "failed" else metrics, "n_params": 123,
            "wall_time_s": 1.0, "started_at": "2026-01-01T00:00:00+00:00",
            "finished_at": "2026-01-01T00:00:01+00:00", "provenance": {"device": "cpu"}}


CONF_USERS = ("bnablate.config", "bnablate.variants", "bnablate.cli.common", "bnablate.cli.list_cmd", "bnablate.hydra_adapter",
              "bnablate.train.finetune")


def use_conf_copy(tmp_path, monkeypatch):
    """A copy of conf/ that every module reads instead of the real one (as a user adding presets would have it);
    returns its path. The variant registry is re-read from it."""
    import shutil
    import sys

    import bnablate.config
    import bnablate.variants

    conf = tmp_path / "conf"
    shutil.copytree(bnablate.config.CONF_DIR, conf)
    for name in CONF_USERS:
        monkeypatch.setattr(sys.modules[name], "CONF_DIR", conf)
    bnablate.variants.variant_presets.cache_clear()
    monkeypatch.setattr(bnablate.variants.variant_presets, "cache_clear", bnablate.variants.variant_presets.cache_clear)
    return conf


class Counting(Reporter):
    """A sweep Reporter that counts the runs that actually trained (skipped ones are reported as such) and can
    interrupt the sweep (Ctrl-C) after n of them."""

    def __init__(self, stop_after=None):
        self.trained, self.stop_after = [], stop_after

    def run_done(self, record):
        if not record.get("skipped"):
            self.trained.append(record["run_key"])
            if self.stop_after is not None and len(self.trained) >= self.stop_after:
                raise KeyboardInterrupt


def dead_claim(folder, key):
    """A claim of `key` in folder/records left by a process that died: its pid no longer exists on this host."""
    import json
    import socket
    import subprocess
    import sys

    from bnablate.results.claims import lock_path

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # exited and reaped: its pid is free
    path = lock_path(folder, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid, "claimed_at": "2026-01-01T00:00:00"}))
    return path


class OtherProcess(Counting):
    """A sweep Reporter for a folder where another process holds the claim of run `key`: when the sweep starts
    waiting for it, that process finishes (its record's bytes appear and its claim is released) or, with record
    None, dies (its claim stays, with a dead pid). Keeps the waiting lines."""

    def __init__(self, folder, key, record=None):
        super().__init__()
        self.folder, self.key, self.record, self.lines = folder, key, record, []

    def waiting_for_runs(self, line):
        from bnablate.results.claims import lock_path
        from bnablate.results.records import record_path

        self.lines.append(line)
        if self.record is None:
            dead_claim(self.folder, self.key)
        else:
            record_path(self.folder, self.key).write_bytes(self.record)
            lock_path(self.folder, self.key).unlink()
