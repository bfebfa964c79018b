"""What `bnablate list` shows of the names defined beside torch code (models, datasets, norms, activations, the variant
axes' and BN options' choices), read without importing torch when nothing has imported it.

Each kind is read from the module that defines it when that module is already imported; a plugin that registers a
model, dataset or norm imports the registry's module to reach it, so the registry it reads then holds the plugins'
entries too. Otherwise nothing but bnablate's own built-ins can be registered there, and they are read from
catalog.json, the snapshot of them that `python -m bnablate.catalog` writes (`make docs` runs it; tests/test_catalog.py
fails when it is stale). `bnablate list` so answers in a fraction of a second, and is complete with plugins loaded."""

from __future__ import annotations

import importlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

from . import plugins
from .atomic import atomic_write_text

SNAPSHOT = Path(__file__).with_name("catalog.json")


def _models(module) -> list:
    return [{"name": name, "description": e.description, "origin": plugins.origin_of(e.obj)}
            for name, e in module.MODELS.items()]


def _datasets(module) -> list:
    # a dataset whose shape is read from the user's files (shape given) shows "from files"
    return [{"name": name, "description": e.description, "origin": plugins.origin_of(e.obj.load),
             "input_shape": list(e.obj.input_shape), "num_classes": e.obj.num_classes,
             "from_files": e.obj.shape is not None} for name, e in module.DATASETS.items()]


def _descriptions(registry: str) -> Callable[[Any], Dict[str, str]]:
    return lambda module: {name: e.description for name, e in getattr(module, registry).items()}


def _choices(name: str) -> Callable[[Any], Dict[str, str]]:
    return lambda module: dict(getattr(module, name))


# kind → (the module that defines it, how to read it there as JSON-able data)
KINDS: Dict[str, Tuple[str, Callable[[Any], Any]]] = {
    "models": ("bnablate.models", _models),
    "datasets": ("bnablate.data", _datasets),
    "norms": ("bnablate.layers.norm", _descriptions("NORMS")),
    "activations": ("bnablate.layers.activations", _descriptions("ACTIVATIONS")),
    "placement": ("bnablate.layers.blocks", _choices("PLACEMENTS")),
    "dropout": ("bnablate.layers.blocks", _choices("DROPOUTS")),
    "bias": ("bnablate.layers.blocks", _choices("BIASES")),
    "residual": ("bnablate.layers.residual", _choices("RESIDUAL")),
    "residual_init": ("bnablate.layers.residual", _choices("RESIDUAL_INIT")),
    "transformer": ("bnablate.layers.transformer", _choices("TRANSFORMER_PLACEMENTS")),
    "eval_stats": ("bnablate.train.bn_stats", _choices("EVAL_STATS")),
    "ghost_stats": ("bnablate.layers.ghost_bn", _choices("GHOST_STATS")),
    "renorm_avg": ("bnablate.layers.batch_renorm", _choices("RENORM_AVG")),
    "finetune_bn": ("bnablate.train.finetune", _choices("FINETUNE_BN")),
}


@lru_cache(maxsize=1)
def _snapshot() -> Dict[str, Any]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def read(kind: str) -> Any:
    """One kind, as `bnablate list` shows it: live where its module is imported, else the built-ins' snapshot."""
    module, reader = KINDS[kind]
    if module in sys.modules:
        return reader(sys.modules[module])
    return _snapshot()[kind]


def snapshot() -> Dict[str, Any]:
    """Every kind read live (importing torch): what catalog.json must hold. Refused with a plugin loaded, whose
    entries are no built-ins."""
    out = {kind: reader(importlib.import_module(module)) for kind, (module, reader) in KINDS.items()}
    if plugins.LOADED or plugins.FAILED:
        raise RuntimeError(f"plugins are loaded ({', '.join(plugins.LOADED) or 'failed ones'}): write the snapshot of "
                           f"bnablate's built-ins without them (unset {plugins.ENV}).")
    return out


def write(path: Path = SNAPSHOT) -> None:
    atomic_write_text(path, json.dumps(snapshot(), indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else SNAPSHOT)
    print(f"wrote {sys.argv[1] if len(sys.argv) > 1 else SNAPSHOT}")
