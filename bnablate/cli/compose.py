"""Composing a command's config from overrides, with one-paragraph usage errors naming the fix instead of tracebacks."""

from __future__ import annotations

import difflib
import os
import re
from typing import List, Optional

import yaml
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config import compose_config
from ..errors import ConfigError
from ..keys import override_key
from ..registry import UnknownNameError, unknown_name_message
from .common import LISTED_GROUPS, fail, group_options


def _all_keys(cfg: DictConfig, prefix: str = "") -> List[str]:
    keys = []
    for k in cfg.keys():
        node = cfg._get_node(k)
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(node, DictConfig):
            keys += _all_keys(node, full + ".")
    return keys


# Everything composing a config can raise on bad input; each becomes a usage error through explain().
CONFIG_ERRORS = (ConfigCompositionException, MissingConfigException, OverrideParseException, OmegaConfBaseException,
                 yaml.YAMLError)


def explain(e: BaseException, overrides: List[str]) -> str:
    """A one-paragraph message for a config error, naming the fix."""
    text = str(e)
    if isinstance(e, yaml.YAMLError):  # PyYAML's text names the file, line and column; keep it on one line
        where = " ".join(text.split())
        return f"A config file does not parse as YAML: {where}. Fix that file (or remove it) and run again."
    if isinstance(e, MissingConfigException):
        given = next((o.split("=", 1)[1] for o in overrides if override_key(o) == "dataset"), "")
        if given and ("/" in given or "." in given or os.path.exists(os.path.expanduser(given))):
            source = "imagefolder" if os.path.isdir(os.path.expanduser(given)) else "arrays"
            return (f"dataset={given} looks like a path, and dataset= takes a dataset's name. For your own files use "
                    f"dataset={source} dataset.path={given} (arrays: an .npz of x_train, y_train, x_test, y_test; "
                    f"imagefolder: a folder of <class>/ image folders). Run `bnablate list datasets` for the names.")
        m = re.search(r"Could not find '(.+)/([^/']+)'", text)  # group may be nested: hydra/launcher/NAME
        if m:
            group, name = m.groups()
            schema_hint = _registered_without_config(group, name)
            if schema_hint:
                return schema_hint
            # Hydra's own list covers plugin-provided options too (hydra/launcher=joblib); base_* are our schemas
            options = [o for o in (getattr(e, "options", None) or group_options(group)) if not o.startswith("base_")]
            hint = f" Run `bnablate list {group}s` for descriptions." if group in LISTED_GROUPS else ""
            return unknown_name_message(group, name, options) + hint
        return text.split("\n")[0]
    if isinstance(e, OverrideParseException):
        return (f"Malformed override: {text.splitlines()[0]} Overrides look like key=value, group=option, or "
                "key=a,b / key=range(3) for a sweep; quote values containing spaces or brackets.")
    if isinstance(e, ConfigCompositionException) and text.startswith("Ambiguous value"):
        return (f"{text.splitlines()[0]}: `bnablate run` takes one value per key. To compare values, use "
                "`bnablate sweep` with the same overrides; for a list value write key=[a,b].")
    if isinstance(e, ConfigCompositionException):
        m = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' (?:is )?not in", text)
        if m:
            bad = m.group(1)
            try:
                keys = _all_keys(compose_config([o for o in overrides if not o.lstrip("+~").startswith(bad)]))
            except Exception:  # noqa: BLE001 - suggestions are best effort
                keys = []
            close = difflib.get_close_matches(bad, keys, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            return f"Unknown config key '{bad}'.{hint} `bnablate run --show-config` prints every key."
        cause = e.__cause__ or e.__context__
        if isinstance(cause, OmegaConfBaseException):
            return _omegaconf_message(cause)
        return text.splitlines()[0]
    if isinstance(e, OmegaConfBaseException):
        return _omegaconf_message(e)
    return text


def _registered_without_config(group: str, name: str) -> Optional[str]:
    """A model or dataset a plugin registered (its builder or loader) with no config to compose it: say so."""
    from .. import plugins
    from ..data import DATASETS
    from ..models import MODELS

    registry = {"model": MODELS, "dataset": DATASETS}.get(group)
    if registry is None or name not in registry:
        return None
    entry = registry.entry(name).obj
    origin = plugins.origin_of(getattr(entry, "load", entry))
    schema = "register_model_schema" if group == "model" else "register_dataset_schema"
    return (f"{group} '{name}' is registered ({origin}) but has no config, so {group}={name} cannot compose. Fix: in "
            f"the plugin, call bnablate.config.{schema}('{name}', ItsConfig) or ship conf/{group}/{name}.yaml under its "
            f"CONFIG_PATH (docs/extending.md, 'Plugins').")


def _omegaconf_message(e: OmegaConfBaseException) -> str:
    key = getattr(e, "full_key", None)
    first = str(e).splitlines()[0]
    if key == "dataset.name" and first.startswith("Missing mandatory value"):  # dataset=torchvision alone
        from ..data.tv_sets import TV_SETS

        return (f"dataset=torchvision needs dataset.name=NAME, one of {', '.join(TV_SETS)}, e.g. dataset=torchvision "
                f"dataset.name=cifar100 (`bnablate list datasets` shows every dataset).")
    return f"Invalid value for '{key}': {first}." if key else first


def compose_or_fail(overrides: List[str]) -> DictConfig:
    """The composed, resolved and validated config of a command's overrides, or a usage error naming the fix."""
    from ..train import validate_config  # builds the model to check it: torch, needed only by commands that train

    try:
        cfg = compose_config(overrides)
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # surface interpolation errors now
        validate_config(cfg)
        return cfg
    except (ConfigError, UnknownNameError) as e:
        fail(str(e))
    except CONFIG_ERRORS as e:
        fail(explain(e, overrides))
