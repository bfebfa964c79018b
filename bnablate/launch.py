"""The `bnablate` executable: takes `--plugin MODULE|FILE.py` (any number, anywhere on the line) into BNABLATE_PLUGINS
before anything imports the config schema — plugins register schemas, so they must load first — then runs the CLI."""

from __future__ import annotations

import sys
from typing import List, Tuple

from .plugins import add_from_flag


def split_plugins(argv: List[str]) -> Tuple[List[str], List[str]]:
    """(the --plugin values, the other arguments) of a command line."""
    plugins, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--plugin" and i + 1 < len(argv):
            plugins.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--plugin="):
            plugins.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return plugins, rest


def main() -> None:
    plugins, rest = split_plugins(sys.argv[1:])
    if plugins:  # into BNABLATE_PLUGINS, which also carries them to joblib / submitit worker processes
        add_from_flag(plugins)
    sys.argv = [sys.argv[0], *rest]
    from .cli import main as cli_main

    cli_main()
