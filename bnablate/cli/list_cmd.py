"""`bnablate list`: the registered variants, models, datasets, sweeps and layer choices as rich tables."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from .. import catalog, plugins
from ..conf_dir import CONF_DIR
from ..registry import unknown_name_message
from .common import console, fail

# The tables import what they read (the config schema, Hydra) when they are built: `bnablate --help` and completion
# import this module too, and need none of it.

WHAT = ("variants", "models", "datasets", "sweeps", "axes", "bn", "options")


def _table(title: str, *columns: str) -> Table:
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, overflow="fold", no_wrap=i == 0)  # names stay whole: they are what users type
    if plugins.LOADED:  # with plugins loaded, each row says where it comes from
        t.add_column("origin", no_wrap=True)
    return t


def _row(t: Table, origin: str, *cells: str) -> None:
    t.add_row(*cells, *([origin] if plugins.LOADED else []))


def variants_table() -> Table:
    from ..variants import variant_origins, variant_presets

    t = _table("variants (conf/variant; pick with variant=NAME, change an axis with variant.AXIS=VALUE)",
               "name", "norm", "placement", "dropout", "bias", "activation", "residual", "transformer", "description")
    origins = variant_origins()
    for name, e in variant_presets().items():
        v = e.obj
        drop = v["dropout"] if v["dropout"] == "none" else f"{v['dropout']} p={v['dropout_p']}"
        residual = v["residual"] + ("" if v["residual_init"] == "standard" else f" + {v['residual_init']}")
        _row(t, origins[name], name, v["norm"] + (f" ({v['groups']})" if v["norm"] == "group" else ""),
             v["placement"], drop, v["bias"], v["activation"], residual, v["transformer"], e.description)
    return t


def models_table() -> Table:
    t = _table("models (conf/model; model=NAME)", "name", "description")
    for m in catalog.read("models"):  # the models' code (torch) is not imported to name them
        _row(t, m["origin"], m["name"], m["description"])
    return t


def datasets_table() -> Table:
    t = _table("datasets (conf/dataset; dataset=NAME; files under dataset.root or $BNABLATE_DATA_ROOT)",
               "name", "input", "classes", "description")
    for d in catalog.read("datasets"):
        if d["from_files"]:  # the user's own files: read from them at run time
            _row(t, d["origin"], d["name"], "from files", "from files", d["description"])
        else:
            _row(t, d["origin"], d["name"], "×".join(str(s) for s in d["input_shape"]), str(d["num_classes"]),
                 d["description"])
    return t


def sweeps_table() -> Table:
    from omegaconf import OmegaConf

    t = _table("sweeps (conf/sweep; bnablate sweep sweep=NAME)", "name", "description", "grid")
    for path, origin in plugins.config_files("sweep", CONF_DIR):  # a plugin's conf/sweep too
        cfg = OmegaConf.load(path)
        params = OmegaConf.select(cfg, "hydra.sweeper.params", default={}) or {}
        grid = "  ".join(f"{k}={v}" for k, v in params.items())
        _row(t, origin, path.stem, str(OmegaConf.select(cfg, "sweep.description", default="")), grid)
    return t


def axes_table() -> Table:
    t = _table("variant axes (variant.AXIS=VALUE)", "axis", "value", "meaning")
    for axis, kind in [("norm", "norms"), ("placement", "placement"), ("dropout", "dropout"), ("bias", "bias"),
                       ("activation", "activations"), ("residual", "residual"), ("residual_init", "residual_init"),
                       ("transformer", "transformer")]:
        for value, meaning in catalog.read(kind).items():
            t.add_row(axis, value, meaning)
    return t


BN_KEYS = {  # key → (values, meaning) for the rows that are not a list of choices
    "bn.momentum": ("0.1 (default), [0, 1], null",
                    "PyTorch convention: running = (1 − m)·running + m·batch; null = cumulative average over all batches "
                    "so far. Keras/TF write it the other way round, moving = m·moving + (1 − m)·batch, so Keras' "
                    "default momentum=0.99 is bn.momentum=0.01 here, and PyTorch's default 0.1 is Keras' 0.9"),
    "bn.eps": ("1e-5 (default), > 0", "added to the variance before the square root (Keras' default is 1e-3)"),
    "bn.affine": ("true (default), false", "learned per-channel scale γ and shift β (also GroupNorm/LayerNorm's)"),
    "bn.precise_batches": ("200 (default), ≥ 1", "training batches averaged by PreciseBN (eval_stats=precise, "
                                                  "precise_nodrop or population, finetune.bn=reset)"),
}


def bn_table() -> Table:
    t = _table("batch norm and fine-tuning (bn.KEY=VALUE, finetune.KEY=VALUE)", "key", "value", "meaning")
    for key, kind in (("bn.eval_stats", "eval_stats"), ("bn.ghost_stats", "ghost_stats"),
                      ("bn.renorm_avg", "renorm_avg")):
        for value, meaning in catalog.read(kind).items():
            t.add_row(key, value, meaning)
    for key, (values, meaning) in BN_KEYS.items():
        t.add_row(key, values, meaning)
    for value, meaning in catalog.read("finetune_bn").items():
        t.add_row("finetune.bn", value, meaning)
    t.add_row("finetune.source", "null (default), a dataset", "pretrain on this dataset (checkpoint reused per "
              "pretraining config and seed), re-initialise the head, fine-tune on `dataset`")
    return t


def options_table() -> Table:
    from omegaconf import MISSING

    from ..config import KEYS
    from ..config_doc import literal

    t = _table("config options (KEY=VALUE; role and meaning declared in bnablate/config.py; docs/configuration.md)",
               "key", "default", "role", "meaning")
    for spec in KEYS.specs:
        role = spec.role.value + (f" (neutral {literal(spec.neutral)})" if spec.has_neutral else "")
        t.add_row(spec.key, "(group file)" if spec.default is MISSING else literal(spec.default), role, spec.doc)
    return t


TABLES = {"variants": variants_table, "models": models_table, "datasets": datasets_table, "sweeps": sweeps_table,
          "axes": axes_table, "bn": bn_table, "options": options_table}


def list_cmd(
    what: Annotated[Optional[str], typer.Argument(help=f"One of: {', '.join(WHAT)}. All when omitted.")] = None,
) -> None:
    """Show the registered variants, models, datasets, sweep presets, variant axes and config options."""
    from .compose import CONFIG_ERRORS, explain

    if what is not None and what not in TABLES:
        fail(unknown_name_message("list", what, list(WHAT)))
    for name in [what] if what else list(TABLES):
        try:
            table = TABLES[name]()
        except CONFIG_ERRORS as e:  # a preset file someone added does not parse
            fail(explain(e, []))
        console.print(table)
