"""Plugins: modules outside bnablate that register models, datasets, norms and config schemas with bnablate's own
registries (timm's `register_model` from any module), and may ship Hydra configs (model/variant/sweep YAMLs) found
through Hydra's search path (`pkg://`). Loaded once per process, before the config schema's key lists are derived
(bnablate/config.py calls load_plugins), from:

- the `bnablate.plugins` entry-point group of installed packages (as pytest and Hydra find their plugins):
  `[project.entry-points."bnablate.plugins"] my_lab = "my_lab.bnablate_plugin"`;
- the environment variable BNABLATE_PLUGINS: comma-separated module names or .py files (`bnablate --plugin X`
  adds X to it, add_from_flag; worker processes of joblib/submitit inherit it).

A plugin module may set `CONFIG_PATH = "pkg://my_lab.conf"` (a package holding model/, variant/, sweep/ folders).
A plugin that fails to import (or registers a name twice) does not break bnablate's import: the failure is kept and
every command reports it, naming the plugin, where it came from (--plugin, BNABLATE_PLUGINS or an installed package's
entry point) and the fix for that origin, before doing anything."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set

ENV = "BNABLATE_PLUGINS"
GROUP = "bnablate.plugins"
FLAG = "--plugin"


class PluginError(RuntimeError):
    """A plugin that could not load; the message names it, what went wrong and the fix."""


@dataclass(frozen=True)
class Plugin:
    name: str  # the module's name
    origin: str  # "entry point NAME of DIST", "--plugin" or "BNABLATE_PLUGINS"
    config_path: Optional[str]  # its Hydra configs, e.g. pkg://my_lab.conf


LOADED: Dict[str, Plugin] = {}
FAILED: List[str] = []  # one message per plugin that did not load
_DONE = False
_FROM_FLAG: Set[str] = set()  # the BNABLATE_PLUGINS items this process's command line gave as --plugin


def add_from_flag(items: Sequence[str]) -> None:
    """`bnablate --plugin X …`: each X joins BNABLATE_PLUGINS (which carries it to joblib/submitit worker processes)
    and is remembered as given by --plugin, so a failure to load it names that as its origin and its fix."""
    os.environ[ENV] = ",".join(p for p in [os.environ.get(ENV, ""), *items] if p)
    _FROM_FLAG.update(items)


def _fix(label: str, origin: str) -> str:
    """How to stop loading a plugin, for where it came from."""
    if origin == FLAG:
        return f"drop `--plugin {label}`"
    if origin == ENV:
        return f"remove {label} from {ENV}, or unset {ENV}"
    return "uninstall the package that declares it"


def _import_file(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    name = f"bnablate_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling (joblib workers) look modules up by name
    spec.loader.exec_module(module)
    return module


def _where(exc: BaseException) -> str:
    """The plugin's own line that raised (the last frame outside bnablate and Python's import machinery: a module
    that is not there has no line of its own), for the message."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")
              and not {"bnablate", "importlib"} & set(Path(f.filename).parts)]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _load(label: str, origin: str, load) -> None:
    try:
        module = load()
    except Exception as e:  # noqa: BLE001  (any failure of foreign code becomes one clear message)
        FAILED.append(f"plugin {label} (from {origin}) did not load: {type(e).__name__}: {e}{_where(e)}. Fix the "
                      f"plugin, or stop loading it ({_fix(label, origin)}).")
        return
    name = getattr(module, "__name__", label)
    LOADED[name] = Plugin(name, origin, getattr(module, "CONFIG_PATH", None))


def requested() -> List[str]:
    """The modules and files BNABLATE_PLUGINS names."""
    return [p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip()]


def load_plugins(conf_dir: Optional[Path] = None) -> None:
    """Import every plugin once (entry points, then BNABLATE_PLUGINS); failures are kept in FAILED, and so is a
    plugin config file that takes the name of one in conf_dir (bnablate's conf/) or of another plugin's."""
    global _DONE
    if _DONE:
        return
    _DONE = True
    _import_all()
    seen: Dict[tuple, str] = {}
    for path, origin in config_files("*", conf_dir):
        key = (path.parent.name, path.stem)
        if key in seen:
            FAILED.append(f"{origin}'s {path} takes the name of {seen[key]}'s {key[0]} '{key[1]}'. Fix: rename "
                          f"the plugin's file (each name must be unique, as `{key[0]}={key[1]}` picks one).")
        seen.setdefault(key, origin)


def _import_all() -> None:
    import importlib.metadata  # here: reading every installed package's metadata is slow, and --help needs none

    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        _load(ep.name, f"entry point {ep.name}" + (f" of {dist.name}" if dist else ""), ep.load)
    for item in requested():
        origin = FLAG if item in _FROM_FLAG else ENV
        if item.endswith(".py"):
            _load(item, origin, lambda: _import_file(Path(item).expanduser().absolute()))
        else:
            _load(item, origin, lambda: importlib.import_module(item))


def check_plugins() -> None:
    """Raise PluginError listing every plugin that did not load (the CLI and the API call this first)."""
    if FAILED:
        raise PluginError(" ".join(FAILED))


def search_path() -> List[str]:
    """The loaded plugins' Hydra config folders, for hydra.searchpath."""
    return [p.config_path for p in LOADED.values() if p.config_path]


def search_path_override() -> List[str]:
    """`hydra.searchpath=[...]` for compose and multirun when a plugin ships configs (else nothing)."""
    paths = search_path()
    return [f"hydra.searchpath=[{','.join(paths)}]"] if paths else []


def origin_of(obj) -> str:
    """'bnablate' for the built-ins, else the plugin module (or package) that registered obj."""
    module = getattr(obj, "__module__", "") or ""
    if module == "bnablate" or module.startswith("bnablate."):
        return "bnablate"
    for name in LOADED:
        if module == name or module.startswith(name + "."):
            return f"plugin {name}"
    return module or "?"


def config_dirs() -> List[tuple]:
    """(folder, origin) of each loaded plugin's Hydra configs on disk (pkg://a.b → the package a.b's folder), for
    what reads conf/ files directly (`bnablate list`, the variant presets behind every table label)."""
    out = []
    for plugin in LOADED.values():
        path = plugin.config_path or ""
        if path.startswith("pkg://"):
            spec = importlib.util.find_spec(path[len("pkg://"):].replace("/", "."))
            folders = list(spec.submodule_search_locations or []) if spec else []
            out += [(Path(f), f"plugin {plugin.name}") for f in folders]
        elif path.startswith("file://"):
            out.append((Path(path[len("file://"):]), f"plugin {plugin.name}"))
    return out


def config_files(group: str, builtin: Optional[Path] = None) -> List[tuple]:
    """(file, origin) of every conf/<group>/*.yaml (group "*": every group): bnablate's own under `builtin` first,
    then each loaded plugin's — for what reads config files directly (variant presets, `bnablate list sweeps`, the
    name-collision check)."""
    folders = ([(builtin, "bnablate")] if builtin is not None else []) + config_dirs()
    return [(path, origin) for folder, origin in folders for path in sorted(folder.glob(f"{group}/*.yaml"))]
