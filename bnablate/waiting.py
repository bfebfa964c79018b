"""Waiting for runs another process sharing the folder is training: a step that needs every run of its grid (an
`--until-decided` look, the `--tune` selection) polls their records while that process's claims on them are live,
trains here the runs whose claim went stale, and gives up with RunsPending after `--wait-timeout` seconds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Sequence, Set

from .defaults import DEFAULT_WAIT_TIMEOUT
from .errors import ConfigError, RunsPending, pending_message
from .reporter import Reporter
from .results.claims import is_stale, lock_path
from .results.records import RECORDS_DIR, record_path
from .results.schema import RecordError, read_record

POLL_SECONDS = 10.0  # a run's record shows up within 10 s of its end; a poll reads only the still-missing records


@dataclass(frozen=True)
class Wait:
    """How long a step waits for another process's runs (seconds; 0: not at all) and how often it looks."""
    timeout: float = DEFAULT_WAIT_TIMEOUT
    poll: float = POLL_SECONDS

    def __post_init__(self) -> None:
        if not self.timeout >= 0 or not self.poll >= 0:  # NaN too
            raise ConfigError(f"--wait-timeout {self.timeout:g} (poll {self.poll:g} s): give seconds ≥ 0, e.g. "
                              f"--wait-timeout {DEFAULT_WAIT_TIMEOUT:g}; 0 does not wait.")


def _recorded(folders: Sequence[Path], key: str) -> bool:
    """Whether the run has a readable record (finished or failed) in one of the folders."""
    for folder in folders:
        try:
            read_record(record_path(folder, key))
            return True
        except RecordError:  # absent, or bad: the run trains again (execute_run moves a bad file aside)
            pass
    return False


def poll(still: Callable[[], int], wait: Wait, reporter: Reporter, line: Callable[[int], str],
         give_up: Callable[[int], Exception]) -> None:
    """The one polling loop of every wait for another process (runs of a look or a selection, tuning trials, a run
    two trials drew): look with still() — what is still held elsewhere, 0 when done — every wait.poll s; one
    line(n) to the reporter the first time it is not 0; raise give_up(n) once wait.timeout s have passed (at once
    for a timeout of 0)."""
    deadline = None
    while True:
        held = still()
        if not held:
            return
        now = time.monotonic()
        if wait.timeout <= 0 or (deadline is not None and now >= deadline):
            raise give_up(held)
        if deadline is None:
            deadline = now + wait.timeout
            reporter.waiting_for_runs(line(held))
        time.sleep(min(wait.poll, max(0.0, deadline - now)))


def await_runs(keys: Sequence[str], folders: Sequence[Path], what: str, stopped: str,
               train: Callable[[Set[str]], None], wait: Wait, reporter: Reporter) -> None:
    """Return once every run key has a readable record in one of the folders. A run without one whose claim a live
    process holds (claims.is_stale) is waited for (poll: one line to the reporter, a look every wait.poll s,
    RunsPending — its message names the fix; `stopped`: what was not done — once wait.timeout s have passed, at
    once for 0). Runs without a record nor a live claim — the owner died, or was interrupted and released it — are
    trained here by train(keys), as a rerun would, and checked again."""
    where = ", ".join(f"{Path(f) / RECORDS_DIR}/*.lock" for f in folders)
    missing: List[str] = list(keys)
    trained: Set[str] = set()

    def pending(n: int) -> RunsPending:
        return RunsPending(pending_message(n, len(keys), what, where, stopped, wait.timeout))

    def still() -> int:
        nonlocal missing
        while True:
            missing = [k for k in missing if not _recorded(folders, k)]
            held = [k for k in missing if any(not is_stale(lock_path(f, k)) for f in folders)]
            orphans = set(missing) - set(held)
            if not orphans - trained:
                break
            trained.update(orphans)
            train(orphans)
        if missing and not held:  # trained here and still without a record: nobody else will write one
            raise pending(len(missing))
        return len(missing)

    poll(still, wait, reporter, lambda n: f"waiting for {n} of {len(keys)} {what}: another process is training "
         f"them (its claims are {where}); looking every {wait.poll:g} s, for up to {wait.timeout:g} s "
         "(--wait-timeout)", pending)
