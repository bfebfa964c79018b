"""Shared CLI plumbing every command imports: the consoles, usage errors, and shell completion of overrides. Kept free
of Hydra, torch and pandas, so `--help` and a completion keystroke answer fast; composing configs is cli/compose.py."""

from __future__ import annotations

import os
from typing import List, NoReturn

import typer
from rich.console import Console

from ..conf_dir import CONF_DIR

console = Console()
err_console = Console(stderr=True)

OVERRIDES_HELP = "Hydra overrides: key=value or group=option (e.g. variant=bn_post_act optim.lr=0.01)."


LISTED_GROUPS = ("variant", "model", "dataset", "sweep")  # groups `bnablate list` has a table for
COMPLETED_GROUPS = ("variant", "model", "dataset", "optim", "sweep")  # config groups shell completion offers


def group_options(group: str) -> List[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def complete_override(incomplete: str) -> List[str]:
    """Shell completion of an override: `variant=bn_p` → the variant presets starting so; a bare prefix → the
    config groups (`var` → `variant=`). Other keys are left to the user (`bnablate list options` lists them)."""
    # Bash splits words at `=` (COMP_WORDBREAKS): there the word completed is the bare name after `variant =`, and
    # only the shell's own COMP_WORDS (which Typer's bash script passes through) says which group it belongs to.
    words, cword = os.environ.get("COMP_WORDS", "").split(), int(os.environ.get("COMP_CWORD") or 0)
    before = words[:cword]
    if len(before) >= 2 and before[-1] == "=" and before[-2] in COMPLETED_GROUPS:
        return [o for o in group_options(before[-2]) if o.startswith(incomplete)]
    if "=" in incomplete:
        group, prefix = incomplete.split("=", 1)
        if group not in COMPLETED_GROUPS:
            return []
        return [f"{group}={o}" for o in group_options(group) if o.startswith(prefix)]
    return [f"{g}=" for g in COMPLETED_GROUPS if g.startswith(incomplete)]


# Typer's usage-error class (click's UsageError, vendored by newer Typer): printed as "Error: …", exit code 2.
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def fail(message: str) -> NoReturn:
    """Exit with a usage error (exit code 2), never a traceback."""
    raise UsageError(message)
