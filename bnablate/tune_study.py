"""`--tune` as Optuna studies: a range (or a sampler other than the grid, or a pruner) tunes each variant (each
context in shared mode) by a seeded, resumable study in OUT_DIR/tuning/studies.journal (Optuna's file journal: safe
where SQLite over a shared filesystem is not), within a declared budget of trials, then selects as the grid does.

Resumable and shareable: before each trial is asked, a lock on the budget is taken, trials whose process died are
failed (their recorded runs are replayed, not retrained), and the sampler is seeded from the study and the number of
trials asked so far, so a rerun after kill -9 asks the very trials the killed process would have. Two processes
sharing a folder share the budget and never run one trial twice; with TPE or ASHA their selection may differ from
one process's (both depend on the order in which trials finish)."""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import pandas as pd

from .errors import RunsPending, pending_message
from .reporter import Reporter
from .results.claims import claim_path, heartbeat, is_stale, release
from .seeding import derive_seed
from .sweep_plan import DataCache, SweepPlan, plan_sweep
from .tune_space import value_text
from .tune_trials import run_trial
from .tuning_files import tuning_dir
from .waiting import poll

JOURNAL = "studies.journal"
MEDIAN_STARTUP = 5  # MedianPruner: trials that finish unpruned before any is pruned (Optuna's default)
ASHA_REDUCTION = 3  # SuccessiveHalvingPruner: rungs at epochs 1, 3, 9, …; the best third goes on at each


def _optuna():
    import optuna  # lazy: a keystroke (help, completion, list) never imports Optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_sampler(name: str, seed: int) -> Any:
    """Optuna's sampler for a trial. The grid's points are enqueued in the declared order instead (run_unit):
    Optuna's GridSampler stops its study from inside the optimize loop, which an ask-and-tell study has not."""
    optuna = _optuna()
    if name in ("grid", "random"):
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: a trial another process is running counts as a poor result, so two processes explore apart
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(name: str) -> Any:
    optuna = _optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP, n_warmup_steps=0)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=ASHA_REDUCTION)
    return optuna.pruners.NopPruner()


def protocol(spec) -> str:
    """The tuning protocol as text: another space, sampler, pruner, seed set, metric or mode is another study."""
    return "|".join([spec.space.text(), spec.sampler, spec.pruner, spec.metric, spec.mode,
                     ",".join(map(str, spec.seeds))])


def study_name(unit: str, spec) -> str:
    """A study per tuned unit (a cell, or a context in shared mode) and protocol (budgets are counted per study)."""
    return "tune-" + hashlib.sha256(f"{unit}|{protocol(spec)}".encode()).hexdigest()[:16]


@contextmanager
def budget_lock(folder: Path) -> Iterator[None]:
    """One process at a time counts the trials and asks the next one (an flock on tuning/studies.lock)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "studies.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _trial_lock(folder: Path, name: str, number: int) -> Path:
    return folder / "trials" / f"{name}-{number}.lock"


def fail_stale(study, folder: Path) -> None:
    """Trials left running by a process that is gone (its trial lock stale: a dead pid on this host, or no heartbeat
    for 30 min from another) are failed: a rerun asks again, and its sampler draws the same values."""
    optuna = _optuna()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if is_stale(_trial_lock(folder, study.study_name, t.number)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)


def _counted(study) -> int:
    """Trials that use the budget: finished (complete or pruned) or running."""
    optuna = _optuna()
    S = optuna.trial.TrialState
    return len(study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED, S.RUNNING)))


def run_unit(unit: str, cells: Sequence[Tuple[str, ...]], out_dir: Path, spec, reporter: Reporter,
             data: DataCache, wait) -> Any:
    """Run one unit's study to its budget (resuming it; sharing it with other processes) and return the study.
    data: the sweep's loaded datasets, which every trial's checks and runs share."""
    optuna = _optuna()
    folder = tuning_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / JOURNAL)))
    name = study_name(unit, spec)
    direction = "minimize" if spec.metric.endswith("loss") else "maximize"
    study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True,
                                pruner=make_pruner(spec.pruner))
    study.set_user_attr("unit", unit)
    distributions = spec.space.distributions()
    while True:
        with budget_lock(folder):
            fail_stale(study, folder)
            asked = _counted(study)
            if asked >= spec.trials:
                break
            # seeded by the protocol and the trials asked so far, not by the variant: every variant's random search
            # (and TPE's random start-up) tries the same values, as a grid would
            study.sampler = make_sampler(spec.sampler, derive_seed("tune", protocol(spec), asked) % 2**32)
            if spec.sampler == "grid":  # the grid's next point, in the declared order (first key slowest)
                study.enqueue_trial(dict(zip(spec.keys, (c.split("=", 1)[1] for c in spec.candidates[asked]))))
            trial = study.ask(distributions)
            lock = claim_path(_trial_lock(folder, name, trial.number))
            trial.set_user_attr("owner", f"{socket.gethostname()}:{os.getpid()}")
        try:
            _run(trial, cells, out_dir, spec, reporter, data, lock, name, wait)
        finally:
            release(lock)
    _wait_for_others(study, folder, reporter, wait)
    return study


def _run(trial, cells, out_dir: Path, spec, reporter: Reporter, data: DataCache, lock: Path, name: str,
         wait) -> None:
    from .tuning import merge
    optuna = _optuna()
    params = [f"{k}={value_text(trial.params[k])}" for k in spec.keys]
    seeds = f"seed={','.join(map(str, spec.seeds))}"
    parts = [plan_sweep(list(cell) + params + [seeds, f"out_dir={tuning_dir(out_dir)}"], data=data)
             for cell in cells]
    trial_plan = merge(parts, data)
    reporter.runs_added(trial_plan)

    def report(value: float, epoch: int) -> bool:
        heartbeat(lock)
        if not math.isfinite(value):
            return False  # a diverged or failed run: the trial fails at its end, the pruner never sees NaN
        trial.report(value, epoch)
        return trial.should_prune()

    outcome = run_trial(trial_plan.configs, spec.metric, spec.pruner, report, reporter, lambda c: data.get(c.dataset),
                        {"study": name, "trial": trial.number}, wait)
    trial.set_user_attr("run_keys", {" ".join(cell): list(part.keys) for cell, part in zip(cells, parts)})
    if outcome.pruned_at is not None:
        trial.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif math.isfinite(outcome.value):
        trial.study.tell(trial, outcome.value)
    else:
        trial.study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _wait_for_others(study, folder: Path, reporter: Reporter, wait) -> None:
    """Selection needs every trial of the budget: wait (waiting.poll) while other live processes still run some,
    RunsPending once wait.timeout s have passed (at once for 0). A trial whose process died is failed (fail_stale)
    and asked again by the next run of this command."""
    optuna = _optuna()

    def still() -> int:
        with budget_lock(folder):
            fail_stale(study, folder)
            return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))

    poll(still, wait, reporter,
         lambda n: f"waiting up to {wait.timeout:g} s for {n} tuning trial(s) another process is running (claims in "
                   f"{folder}/trials/)",
         lambda n: RunsPending(pending_message(n, _counted(study), "tuning trials", f"{folder}/trials/*.lock",
                                               "Nothing was selected or evaluated", wait.timeout)))


def trial_rows(study, cells: Dict[str, Tuple[str, str]], folder: Path, spec) -> List[Dict[str, Any]]:
    """One row per finished trial × cell (cells: cell text → (label, context)), as the grid's candidates.csv rows:
    the trial's values, the cell's mean score over its runs (NaN unless the trial completed), how its runs ended and
    the epochs they trained, and the trial's last reported value (where a pruned trial stood)."""
    from .results.records import record_path
    from .results.schema import read_record
    from .tune_trials import so_far

    optuna = _optuna()
    S = optuna.trial.TrialState
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in (S.COMPLETE, S.PRUNED, S.FAIL)
                and t.user_attrs.get("run_keys")]
    rows = []
    for order, t in enumerate(sorted(finished, key=lambda t: t.number)):
        for cell, keys in t.user_attrs["run_keys"].items():
            records = [read_record(record_path(folder, k)) for k in keys]
            status = [r["status"] for r in records]
            scores = [so_far(spec.metric, r.get("metrics") or []) for r in records]
            complete = t.state == S.COMPLETE and all(math.isfinite(v) for v in scores)
            rows.append({"cell": cell, "candidate": order, "label": cells[cell][0], "context": cells[cell][1],
                         "trial": t.number, "state": t.state.name.lower(),
                         "n_ok": status.count("ok"), "n_diverged": status.count("diverged"),
                         "n_failed": status.count("failed"), "n_pruned": status.count("pruned"),
                         "n_runs": len(records), "epochs": sum(len(r.get("metrics") or []) for r in records),
                         "score": sum(scores) / len(scores) if complete else math.nan,
                         "last_value": _last(t), **{k: value_text(t.params[k]) for k in spec.keys}})
    return rows


def _last(trial) -> float:
    values = trial.intermediate_values
    return values[max(values)] if values else math.nan


def tune_by_study(plan: SweepPlan, spec, reporter: Reporter, cells: Dict[Tuple[str, ...], Any],
                  labels: Dict[str, Tuple[str, str]], wait) -> pd.DataFrame:
    """Run every unit's study (a unit per cell, or per context in shared mode) and return the trials' scores frame
    (trial_rows with `_order`: larger is better) for tuning.select."""
    from .tuning_files import result_overrides

    units: Dict[str, List[Tuple[str, ...]]] = {}
    for cell in cells:
        text = " ".join(cell)
        unit = text if spec.mode == "per-variant" else labels[text][1]
        units.setdefault(result_overrides(unit), []).append(cell)
    rows = []
    for unit, members in units.items():
        out_dir = Path(cells[members[0]].out_dir)
        study = run_unit(unit, members, out_dir, spec, reporter, plan.data, wait)
        rows += trial_rows(study, {" ".join(c): labels[" ".join(c)] for c in members}, tuning_dir(out_dir), spec)
    frame = pd.DataFrame(rows)
    frame["_order"] = -frame["score"] if spec.metric.endswith("loss") else frame["score"]
    return frame
