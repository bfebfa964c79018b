"""Planning a sweep before anything trains: its jobs as Hydra will run them, each composed and checked (data
loaded once per dataset), their run keys, and which of them train as packs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from omegaconf import DictConfig

from .config import to_plain
from .data import DataSplits, load_data
from .data.stream import resident_bytes
from .hydra_adapter import JobComposer, expand_sweep
from .keys import override_key
from .pack import PackPlan, check_pack_options, plan_packs
from .results import finished, run_key
from .results.records import RECORDS_DIR
from .results.schema import scan_records
from .reports.metrics import check_report_options
from .train import ConfigError, validate_config
from .train.runner import check_data


class DataCache:
    """Each distinct dataset of a sweep loaded once (CPU tensors), shared by the checks, the pack plan's memory
    estimate, the packs and the runs this process trains."""

    def __init__(self) -> None:
        self._data: Dict[str, DataSplits] = {}

    def get(self, dataset_cfg) -> DataSplits:
        key = repr(sorted(dataset_cfg.items()))
        if key not in self._data:
            self._data[key] = load_data(dataset_cfg)
        return self._data[key]

    def loaded(self, dataset_cfg) -> Optional[DataSplits]:
        """The dataset if a check already loaded it, else None (never loads)."""
        return self._data.get(repr(sorted(dataset_cfg.items())))

    def nbytes(self, cfg: DictConfig) -> int:
        """Bytes of cfg's images (the copy a pack holds on the GPU beside its runs)."""
        data = self.get(cfg.dataset)
        return sum(resident_bytes(t) for t in (data.train_x, data.val_x, data.test_x))


def distinguishing_labels(jobs: Sequence[Sequence[str]], among: Sequence[Sequence[str]], ignore: Sequence[str] = (),
                          default: str = "(defaults)") -> List[str]:
    """Each job by the overrides that tell the jobs of `among` apart (e.g. 'variant=no_bn'), leaving out the keys in
    `ignore` (what the caller names otherwise); `default` if none."""
    values: Dict[str, set] = {}
    for job in among:
        for item in job:
            values.setdefault(item.split("=", 1)[0], set()).add(item)
    varying = {k for k, v in values.items() if len(v) > 1 and override_key(k) not in ignore}
    return [" ".join(item for item in job if item.split("=", 1)[0] in varying) or default for job in jobs]


@dataclass
class SweepPlan:
    overrides: List[str]  # as given: Hydra's multirun expands them again, to the same jobs
    jobs: List[List[str]]  # each job's overrides, as Hydra's basic sweeper expands them (a repeated run once)
    launcher: str = "basic"  # the hydra/launcher option: "basic" (in this process), joblib, submitit_local, slurm...
    configs: List[DictConfig] = field(default_factory=list)
    keys: List[str] = field(default_factory=list)
    packs: PackPlan = field(default_factory=PackPlan)  # which unfinished jobs train as packs, which alone, and why
    quarantined: List[Any] = field(default_factory=list)  # (BadRecord, where it was moved) per bad file found
    repeats: List[List[str]] = field(default_factory=list)  # jobs dropped as the same run as an earlier job
    data: DataCache = field(default_factory=DataCache, repr=False)

    @property
    def out_dirs(self) -> List[Path]:
        return sorted({Path(c.out_dir) for c in self.configs})

    def finished_count(self) -> int:
        return sum(finished(Path(c.out_dir), k) is not None for c, k in zip(self.configs, self.keys))

    def mixing(self) -> List[str]:
        """A warning per default output folder (no out_dir= given: runs/<sweep.name>) that already holds runs of
        another dataset or model than this sweep trains, e.g. a CIFAR-10 sweep about to land beside the demo's digits
        runs. Nothing is wrong with the numbers (reports compare within a dataset × model), but the folder's tables
        and report then mix two studies."""
        if any(override_key(o) == "out_dir" for o in self.overrides):
            return []
        notes = []
        for folder in self.out_dirs:
            mine = {(c.dataset.name, c.model.name) for c in self.configs if Path(c.out_dir) == folder}
            theirs = {(r["config"]["dataset"]["name"], r["config"]["model"]["name"])
                      for r in scan_records(folder).records} if (folder / RECORDS_DIR).is_dir() else set()
            if theirs and not mine <= theirs:
                old = ", ".join(f"dataset={d} model={m}" for d, m in sorted(theirs))
                new = ", ".join(f"dataset={d} model={m}" for d, m in sorted(mine - theirs))
                new_names = ({d for d, _ in mine} - {d for d, _ in theirs}) | ({m for _, m in mine} - {m for _, m in theirs})
                tag = "-".join(sorted(new_names)) or "new"
                notes.append(f"{folder} (the default out_dir, runs/<sweep.name>) already holds runs of {old}; this "
                             f"sweep adds {new} there, so its tables and report will hold both. To keep them apart, "
                             f"pass out_dir={folder}-{tag}.")
        return notes

    def run_labels(self, shown: Sequence[str] = ("variant", "seed", "out_dir")) -> Dict[str, str]:
        """run key → the overrides that tell this plan's jobs apart besides the keys `shown` (which a progress line
        names already), e.g. 'optim.lr=0.003' for a tuning run of one candidate; '' where nothing else differs."""
        return dict(zip(self.keys, distinguishing_labels(self.jobs, self.jobs, ignore=shown, default="")))

    def repeats_note(self) -> List[str]:
        """One note when the grid's expansion gave some run more than once (seed=1,1; optim.lr=0.1,1e-1): those jobs
        are planned once, since a run is its config and folder (its record is the answer however often it is asked
        for), and a repeated seed adds no replicate."""
        if not self.repeats:
            return []
        jobs = list(dict.fromkeys(" ".join(job) for job in self.repeats))
        shown = "; ".join(jobs[:3]) + (f"; and {len(jobs) - 3} more" if len(jobs) > 3 else "")
        return [f"{len(self.repeats)} job(s) of the grid repeat an earlier job's run (the same config into the same "
                f"folder), so each run is planned once ({shown}). A repeated value adds no replicate (seed=1,1 is one "
                f"run); for more seeds give distinct ones, e.g. seed=range(3)."]

    def describe(self) -> List[str]:
        """The plan in lines, as `bnablate sweep --dry-run` prints it: jobs, packs and lone runs with reasons."""
        head = f"{len(self.jobs)} job(s) under the {self.launcher} launcher into {', '.join(map(str, self.out_dirs))}"
        labels = distinguishing_labels(self.jobs, self.jobs)
        return [head, *(f"note: {n}" for n in self.repeats_note()), *self.packs.describe(labels),
                *(f"warning: {n}" for n in self.mixing())]


def check_report(cfg: DictConfig) -> None:
    """report.* of one job (metric, alpha, margin, compare): ConfigError naming the fix, before anything trains."""
    try:
        check_report_options(str(cfg.report.metric), cfg.report.alpha, cfg.report.margin, str(cfg.report.compare))
    except ValueError as e:
        raise ConfigError(f"report options: {e}") from None


def check_sections(cfg: DictConfig) -> None:
    """The options no training check reads — pack.* (the planner's) and report.* (the report's, its verdicts and
    --until-decided's looks) — of one job: ConfigError naming the fix. Every job of a plan and every `run` checks
    them (a run's folder is reported like a sweep's), whichever other check applies."""
    check_pack_options(cfg)
    check_report(cfg)


def check_job(data: DataCache) -> Callable[[DictConfig], None]:
    """Every check of one job before training, data included (each distinct dataset loaded once, into `data`), so
    missing files fail before any training."""
    def check(cfg: DictConfig) -> None:
        validate_config(cfg)
        check_data(cfg, data.get(cfg.dataset))  # e.g. a batch larger than the training split
    return check


def check_same_data(plan: SweepPlan, records: List[Optional[Dict[str, Any]]]) -> None:
    """A finished run is skipped only if it saw the data this sweep would load: a record whose data fingerprint
    differs from the files' now (overwritten, regenerated) is a ConfigError before anything trains, since skipping
    it would report two different datasets under one name and rerunning it would overwrite a result. Runs recorded
    before fingerprints existed, and plans whose check did not load the data, are not compared."""
    changed: Dict[str, List[str]] = {}
    for cfg, rec in zip(plan.configs, records):
        data = plan.data.loaded(cfg.dataset)
        old = ((rec or {}).get("data") or {}).get("fingerprint")
        if data is not None and old and data.fingerprint and old != data.fingerprint:
            changed.setdefault(f"{cfg.dataset.name} in {cfg.out_dir} (recorded {old}, the files now give "
                               f"{data.fingerprint})", []).append(rec["run_key"])
    if changed:
        what = "; ".join(f"{len(keys)} finished run(s) of {where}" for where, keys in changed.items())
        raise ConfigError(f"the data changed since these runs finished: {what}. Skipping them would mix two datasets "
                          f"under one name, rerunning them would overwrite their results. Fix: write this sweep to a new "
                          f"out_dir=..., or restore the files those runs used.")


NO_PACKS = "the {launcher} launcher trains each job in its own worker; packs train under the basic launcher"


def plan_sweep(overrides: List[str], validate: Optional[Callable[[DictConfig], None]] = None,
               data: Optional[DataCache] = None) -> SweepPlan:
    """Expand the sweep into jobs exactly as Hydra's multirun will (hydra_adapter.expand_sweep), compose every job
    and check it (default: check_job, data included; pass another check, e.g. validate_config, to skip the data)
    — so a bad value anywhere in the grid is reported before any training starts — and plan its packs. data: a
    DataCache to share with other plans (`sweep --until-decided` plans each look's extra seeds)."""
    jobs, launcher = expand_sweep(overrides)
    plan = SweepPlan(overrides=list(overrides), jobs=[], launcher=launcher, data=data or DataCache())
    validate = validate or check_job(plan.data)
    compose_job = JobComposer()  # each distinct set of group choices composed once (a 120-job grid: 23 s → 3 s)
    planned = set()  # (out_dir, run key) of the jobs kept
    for job in jobs:
        cfg = compose_job(job)
        validate(cfg)
        check_sections(cfg)  # whichever check was passed
        key = run_key(to_plain(cfg))
        if (str(cfg.out_dir), key) in planned:  # the same run again (SweepPlan.repeats_note)
            plan.repeats.append(job)
            continue
        planned.add((str(cfg.out_dir), key))
        plan.jobs.append(job)
        plan.configs.append(cfg)
        plan.keys.append(key)
    records = [finished(Path(c.out_dir), k) for c, k in zip(plan.configs, plan.keys)]
    check_same_data(plan, records)
    done = [r is not None for r in records]
    plan.packs = plan_packs(plan.configs, done, plan.data.nbytes,
                            no_packs=None if launcher == "basic" else NO_PACKS.format(launcher=launcher))
    return plan
