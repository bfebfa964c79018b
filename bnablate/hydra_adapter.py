"""Hydra's sweep expansion and multirun launch, in one place: the only module that touches Hydra's private API.

Why private API at all: a sweep must be planned before anything trains (every job composed and validated, finished
runs counted, packs formed), and the jobs must be exactly the ones Hydra's own multirun will launch, so that launcher
plugins (joblib, submitit) run the same grid. Hydra exposes no public function for "expand these overrides the way
the basic sweeper does" (BasicSweeper.split_arguments is internal), nor one for "launch a multirun from a list of
overrides" other than a `@hydra.main` entry point reading sys.argv. Both are wrapped here, so a Hydra upgrade that
moves them breaks one file (tests/test_cluster.py and tests/test_keys.py exercise both). The same goes for
`JobComposer`, which applies a job's value overrides with the function Hydra's own compose applies them with.
"""

from __future__ import annotations

import copy
import signal
import sys
import threading
from typing import Any, Callable, List, Tuple

from omegaconf import DictConfig, OmegaConf

from .config import CONF_DIR, compose_config
from .plugins import search_path_override

_ABSENT = object()


def defer_grid_keys(overrides: List[str]) -> List[str]:
    """The overrides, with each plain `key=value` whose key the base config lacks rewritten as the one-value sweep
    `key=choice(value)`. Hydra composes its base config from the plain overrides before the sweeper applies the
    preset's grid, so a key of the model that grid picks (`sweep=repro_resnet model.depth=56`, on the default lenet)
    would fail there; as a sweep it is applied per job, after the grid's `model: resnet`, and every job gets
    `key=value`. A key no job has still fails, when the jobs are composed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    plain = [o for o in parsed if not o.is_sweep_override()]
    dotted = [o for o in plain if "." in o.key_or_group and not o.key_or_group.startswith("hydra.")
              and o.package is None and not o.is_add() and not o.is_delete()]
    if not dotted:
        return list(overrides)
    base = compose_config([o.input_line for o in plain if o not in dotted])
    out = []
    for o in parsed:
        if o in dotted and OmegaConf.select(base, o.key_or_group, default=_ABSENT) is _ABSENT:
            out.append(f"{o.key_or_group}=choice({o.input_line.split('=', 1)[1]})")
        else:
            out.append(o.input_line)
    return out


def expand_sweep(overrides: List[str]) -> Tuple[List[List[str]], str]:
    """(every job's overrides, the launcher's name): the preset's grid (hydra.sweeper.params of the chosen
    conf/sweep) and the command line's sweep overrides expanded exactly as Hydra's basic sweeper does (the command
    line wins per key). The launcher is the hydra/launcher option the composed config chose ("basic": Hydra's
    in-process launcher; joblib, submitit_local, slurm, ...), so a preset that picks one counts too."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    overrides = defer_grid_keys(overrides)
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    with_hydra = compose_config(fixed, return_hydra_config=True)
    params = OmegaConf.to_container(with_hydra.hydra.sweeper.params) or {}
    lines = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    batches = BasicSweeper.split_arguments(parser.parse_overrides(lines), max_batch_size=None)
    launcher = str(with_hydra.hydra.runtime.choices["hydra/launcher"])
    return [job for batch in batches for job in batch], launcher


def launch_multirun(overrides: List[str], task: Callable[[DictConfig], Any]) -> None:
    """Hand the overrides to Hydra's own multirun (`--multirun`), so `hydra/launcher=joblib` etc. work unchanged;
    `task` runs once per job (in the launcher's worker processes for joblib/submitit, so it must pickle there)."""
    import hydra

    main = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)
    saved = sys.argv
    # @hydra.main reads its overrides from the command line only
    sys.argv = ["bnablate", "--multirun", *search_path_override(), *defer_grid_keys(overrides)]
    interrupted = []

    def on_sigint(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    # Ctrl-C while Hydra/OmegaConf compose the next job can surface as another error (a `finally` in OmegaConf
    # touching a half-built node: "'NoneType' object has no attribute '_invalidate_flags_cache'"), which Hydra then
    # reports as exit 1. Remembering the signal keeps it an interrupt: the caller's Ctrl-C path, exit 130.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        main()
    except (Exception, SystemExit):
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        sys.argv = saved
        if main_thread:
            signal.signal(signal.SIGINT, previous)


class JobComposer:
    """compose_config for the many jobs of one plan, composing each distinct set of config-group choices once.

    Hydra's compose takes ~0.2 s on this CPU (the defaults tree and a merge of every file), so a 120-job grid took
    23 s to plan. The jobs of a grid differ mostly in plain values (seed, lr, model.depth), so each job here is the
    composed config of its group choices (`model=resnet`, `sweep=...`, `+x`/`~x`, `hydra.*`: everything that is not a
    plain `key=value` of an existing key) with its value overrides applied in order by Hydra's own
    `_apply_overrides_to_config`, as compose applies them after merging the defaults. The configs equal compose_config's
    (tests/test_sweep_plan_compose.py); one composer lives for one plan, so config files cannot change under it."""

    def __init__(self) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self._parser = OverridesParser.create()
        self._groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
        self._bases: dict = {}

    def _is_value(self, override) -> bool:
        """A plain `key=value` of the config (`seed=1`, `model.depth=56`), not a group choice (`model=resnet`)."""
        from hydra.core.override_parser.types import OverrideType

        key = override.key_or_group
        plain = override.type == OverrideType.CHANGE and override.package is None and not key.startswith("hydra")
        return plain and ("." in key or key not in self._groups)

    def __call__(self, job: List[str]) -> DictConfig:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.errors import ConfigCompositionException

        values, groups = [], []
        for override in self._parser.parse_overrides(list(job)):
            (values if self._is_value(override) else groups).append(override)
        base = tuple(o.input_line for o in groups)
        if base not in self._bases:
            self._bases[base] = compose_config(list(base))
        cfg = copy.deepcopy(self._bases[base])
        try:
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        except ConfigCompositionException:
            # a bad value, or a group this composer does not know (a plugin's own, on the search path): Hydra's
            # compose of the whole job gives the right config or the error a user would see from `bnablate run`
            return compose_config(list(job))
        return cfg
