"""Reporter: the progress hooks a sweep or run calls as it goes (the CLI's progress bars subclass it), in a module of
its own so the commands can define theirs without importing the training code."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Dict

if TYPE_CHECKING:  # annotations only
    from omegaconf import DictConfig

    from .sweep_plan import SweepPlan


class Reporter:
    """Progress hooks of a sweep or a run executed in this process (the basic launcher); no-ops by default. A
    parallel launcher's workers run without one: their runs appear as their records are written."""

    def sweep_planned(self, plan: SweepPlan) -> None: ...

    def run_started(self, cfg: DictConfig, key: str, pack: int = 1) -> None: ...

    def epoch_done(self, row: Dict[str, Any]) -> None: ...

    def run_done(self, record: Dict[str, Any]) -> None: ...

    def runs_added(self, plan: SweepPlan) -> None:
        """`sweep --until-decided` planned more seeds (their runs follow)."""

    def look_done(self, look: Any) -> None:
        """`sweep --until-decided` looked at its comparisons (a sequential.Look)."""

    def plan_declared(self, plan: Any) -> None:
        """`sweep --design` wrote its plan (a plans.Plan) before training."""

    def tuning_done(self, selection: Any, spec: Any) -> None:
        """`sweep --tune` selected each cell's values (a tuning.Selection; spec: the tuning.TuneSpec)."""

    def waiting(self, what: str) -> None:
        """A step waits for work another process is doing in the same folder (what: one line saying for what)."""

    def pack_failed(self, size: int, error: BaseException) -> None:
        warnings.warn(f"a pack of {size} runs could not train as a pack ({type(error).__name__}: {error}); its runs "
                      "train one by one instead.")
