"""docs/configuration.md, rendered from the schema's declared roles and meanings (`make docs`; a test keeps it current)."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any, Dict, List

from omegaconf import MISSING, OmegaConf

from .config import CONF_DIR, KEYS, Config
from .keys import KeySpec, Role

ROLE_MEANING = {
    Role.RESULT: "can change the numbers: part of the run key (a finished run with the same key is skipped), a "
                 "column of runs.csv/results.csv, and a factor the report may group by",
    Role.EXECUTION: "how or where a run computes (device, threads, kernels, pack planning): recorded, not part of "
                    "the run key, never a report factor",
    Role.LOCATION: "a path: kept in each record, neither in the run key nor in the tables",
    Role.LABEL: "a name, description or report option: not in the run key, not a factor",
}
HEADER = """# Configuration reference

<!-- Generated from bnablate/config.py by `make docs` (python -m bnablate.config_doc); do not edit by hand:
tests/test_config_doc.py fails when this file is not current. -->

Every key below is set on the command line as a Hydra override (`bnablate run train.epochs=3 variant=bn_post_act`),
in a `conf/` group file, or in a sweep preset's grid. Each key's **role** is declared once, on its schema field in
`bnablate/config.py`, and decides where it goes:

| role | meaning |
|---|---|
{roles}

*neutral* marks a result key added after the first release: at that value it is left out of the run key, so runs
recorded before the key existed keep their keys (and are still skipped on resume). `bnablate list options` prints
the same table in the terminal; `bnablate run --show-config` prints a composed config.
"""


def literal(v: Any) -> str:
    """A value as one would type it in an override."""
    return json.dumps(v) if isinstance(v, (bool, list, dict)) or v is None else str(v) if v != "" else "''"


def _value(v: Any) -> str:
    return "*(set by the group file)*" if v is MISSING else f"`{literal(v)}`"


def _role(spec: KeySpec) -> str:
    text = spec.role.value
    if spec.has_neutral:
        text += f" (neutral {_value(spec.neutral)})"
    if spec.role in (Role.EXECUTION, Role.LABEL) and spec.table != (spec.role is Role.EXECUTION):
        text += ", in the tables" if spec.table else ", not in the tables"
    return text


def _sections() -> Dict[str, List[KeySpec]]:
    """Section name ('' = top level) → its keys, in schema order."""
    out: Dict[str, List[KeySpec]] = {}
    for spec in KEYS.specs:
        head, _, rest = spec.key.partition(".")
        out.setdefault(head if rest else "", []).append(spec)
    return out


def _group_presets(group: str, specs: List[KeySpec]) -> List[str]:
    """One line per conf/GROUP file: the keys it sets away from the schema's defaults."""
    defaults = {s.key.split(".", 1)[1]: s.default for s in specs}
    lines = []
    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        values = OmegaConf.to_container(OmegaConf.load(path))
        values.pop("defaults", None)
        sets = [f"`{k}={literal(v)}`" for k, v in values.items()
                if k not in ("description", "name") and defaults.get(k, MISSING) != v]
        lines.append(f"- `{group}={path.stem}`" + (f": {', '.join(sets)}" if sets else ""))
    return lines


GROUP_TITLES = {
    "dataset": "`dataset` — the data (`conf/dataset/NAME.yaml`, `bnablate/data/`)",
    "model": "`model` — the network (`conf/model/NAME.yaml`, `bnablate/models/`; keys marked with a model name "
             "exist only in that model's schema)",
    "variant": "`variant` — where the norm goes (`conf/variant/NAME.yaml`; `bnablate list variants`, `list axes`)",
    "optim": "`optim` — the optimizer (`conf/optim/NAME.yaml`)",
    "train": "`train` — the training loop",
    "bn": "`bn` — how every batch-norm layer is built and evaluated",
    "finetune": "`finetune` — pretraining on another dataset first",
    "sweep": "`sweep` — the sweep's name and its report's defaults (`conf/sweep/NAME.yaml`)",
}


def render() -> str:
    roles = "\n".join(f"| {r.value} | {m} |" for r, m in ROLE_MEANING.items())
    parts = [HEADER.format(roles=roles)]
    sections = _sections()
    order = [f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(typing.get_type_hints(Config)[f.name])]
    for name in ["", *order]:
        specs = sections[name]
        parts.append(f"\n## {GROUP_TITLES.get(name, 'Top level')}\n")
        parts.append("| key | default | role | meaning |\n|---|---|---|---|")
        for s in specs:
            where = "" if s.schema in ("ModelConfig", Config.__name__) or name != "model" else \
                f" ({s.schema.removesuffix('Config').lower()})"
            parts.append(f"| `{s.key}`{where} | {_value(s.default)} | {_role(s)} | {s.doc.replace('|', '&#124;')} |")
        if name and (CONF_DIR / name).is_dir() and name not in ("sweep", "variant"):
            parts.append(f"\nThe `conf/{name}` files set:\n")
            parts += _group_presets(name, specs)
    return "\n".join(parts) + "\n"


def main(argv: List[str]) -> None:
    """`python -m bnablate.config_doc [PATH]`: write the reference to PATH (default: stdout)."""
    text = render()
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
