"""The sweep progress bar's run count and ETA: each finished epoch counts as that fraction of its run (of every run of
a pack), so the bar moves, and the ETA appears, after the first epoch rather than the first finished run; runs skipped
as already finished are not work, so a resumed sweep's rate is that of the runs it trains."""

from __future__ import annotations

import datetime as _dt
from typing import Callable, Optional

from rich.progress import ProgressColumn, Task
from rich.text import Text


class RunShares:
    """Runs done (whole) and the run or pack in training (a fraction each), on the progress bar's clock (seconds)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.began: Optional[float] = None  # when the first run trained here started
        self.done = 0  # runs ended: trained here, skipped or failed
        self.trained = 0  # of them, runs trained here (their time is the rate's)
        self.flight = 0  # runs of the run or pack in training that have not ended yet
        self.share = 0.0  # the fraction of each of them done: epochs finished / epochs
        self.epochs = 1

    def started(self, pack: int, epochs: int) -> None:
        if self.began is None:
            self.began = self.clock()
        self.flight, self.share, self.epochs = pack, 0.0, max(1, epochs)

    def epoch(self) -> None:
        self.share = min(1.0, self.share + 1 / self.epochs)

    def ended(self, trained_here: bool) -> None:
        self.done += 1
        if trained_here:
            self.trained += 1
            self.flight = max(0, self.flight - 1)

    @property
    def completed(self) -> float:
        """Runs done, counting the run or pack in training by its finished epochs."""
        return self.done + self.flight * self.share

    def eta_end(self, total: float) -> Optional[float]:
        """The clock time the sweep should end at, from the seconds per run trained here so far; None before the
        first epoch."""
        work = self.trained + self.flight * self.share
        if self.began is None or work <= 0:
            return None
        now = self.clock()
        return now + (now - self.began) / work * max(0.0, total - self.completed)


class EtaColumn(ProgressColumn):
    """The time left until the task's `eta_end` field (set from RunShares), counting down; -:--:-- while unknown."""

    def render(self, task: Task) -> Text:
        end = task.fields.get("eta_end")
        if end is None:
            return Text("-:--:--", style="progress.remaining")
        left = max(0, round(end - task.get_time()))
        return Text(str(_dt.timedelta(seconds=left)), style="progress.remaining")


__all__ = ["EtaColumn", "RunShares"]
