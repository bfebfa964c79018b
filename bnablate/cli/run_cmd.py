"""`bnablate run`: one run from overrides, printing per-epoch metrics; its record lands in out_dir/records."""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Optional

import typer

from ..reporter import Reporter
from .common import OVERRIDES_HELP, complete_override, console, err_console, fail

HEADER = f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'val_acc':>8} {'test_acc':>8} {'lr':>9} {'steps':>6} " \
         f"{'time_s':>7} {'samples/s':>10}"


def format_epoch(r: Dict[str, Any]) -> str:
    return (f"{r['epoch']:>5} {r['train_loss']:>10.4f} {r['train_acc']:>9.4f} {r['val_acc']:>8.4f} "
            f"{r['test_acc']:>8.4f} {r['lr']:>9.2e} {r['steps']:>6} {r['epoch_time_s']:>7.2f} "
            f"{r['samples_per_s']:>10,.0f}")


class _EpochPrinter(Reporter):
    def run_started(self, cfg, key: str, pack: int = 1) -> None:
        from ..variants import config_label

        console.print(f"run {key}: {cfg.model.name} on {cfg.dataset.name}, variant {config_label(cfg)}, "
                      f"seed {cfg.seed} → {cfg.out_dir}")

    def epoch_done(self, row: Dict[str, Any]) -> None:
        if row["epoch"] == 1:  # the header waits for data and model to load without error
            console.print(HEADER, highlight=False)
        console.print(format_epoch(row), highlight=False)


def run_cmd(
    overrides: Annotated[Optional[List[str]], typer.Argument(help=OVERRIDES_HELP, autocompletion=complete_override)] = None,
    force: Annotated[bool, typer.Option("--force", help="Train again even if this run's record is already there.")] = False,
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the resolved config and exit.")] = False,
) -> None:
    """Train one configuration and print its per-epoch metrics (default output folder: runs/run)."""
    from omegaconf import OmegaConf  # here, not at the top: `--help` and completion must not wait for the training code

    from .. import api
    from ..data import DataError
    from ..errors import ConfigError
    from ..results.records import OutputError
    from ..results.schema import RecordError
    from .compose import compose_or_fail

    overrides = list(overrides or [])
    if not any(o.split("=", 1)[0].lstrip("+") == "out_dir" for o in overrides):
        overrides.insert(0, "out_dir=runs/run")
    cfg = compose_or_fail(overrides)
    if show_config:
        console.print(OmegaConf.to_yaml(cfg, resolve=True), highlight=False, end="")
        return
    try:
        rec = api.run(overrides, force=force, reporter=_EpochPrinter())
    except (ConfigError, DataError, OutputError, RecordError) as e:
        fail(str(e))
    if rec["status"] == "running elsewhere":
        err_console.print(f"run {rec['run_key']} is being trained right now by another process into {cfg.out_dir}; "
                          "wait for it, or use another out_dir=….")
        raise typer.Exit(1)
    if rec.get("skipped"):
        console.print(f"run {rec['run_key']} is already recorded in {cfg.out_dir} (use --force to train again):")
        console.print(HEADER, highlight=False)
        for row in rec["metrics"]:
            console.print(format_epoch(row), highlight=False)
    if rec["status"] == "failed":
        err_console.print(f"[red]run failed[/red]: {rec['error']}")
        raise typer.Exit(1)
    last = rec["metrics"][-1]
    console.print(f"status {rec['status']}: final test accuracy {last['test_acc']:.4f}, {rec['n_params']:,} parameters; "
                  f"record in {cfg.out_dir}/records/{rec['run_key']}.json")
