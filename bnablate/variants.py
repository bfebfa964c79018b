"""Variant presets (conf/variant/*.yaml) as a registry, and the label that names a run's variant in tables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Mapping, Optional

from omegaconf import OmegaConf

from .config import CONF_DIR, NEUTRAL_VALUES, VariantConfig
from .plugins import config_files
from .registry import Registry



# Axes added after the first release: a record written before one existed ran at its neutral value.
_LATER_AXES = {k.split(".", 1)[1]: v for k, v in NEUTRAL_VALUES.items() if k.startswith("variant.")}


def _canonical(v: Mapping[str, Any]) -> tuple:
    """The axes that change the network: placement 'none' and norm 'none' both mean no norm; dropout_p matters
    only with dropout, groups only with group norm."""
    v = {**_LATER_AXES, **v}
    norm_on = v["norm"] != "none" and v["placement"] != "none"
    return (
        v["norm"] if norm_on else "none",
        v["placement"] if norm_on else "none",
        v["dropout"],
        float(v["dropout_p"]) if v["dropout"] != "none" else None,
        v["bias"],
        v["activation"],
        int(v["groups"]) if norm_on and v["norm"] == "group" else None,
        v["residual"],
        v["residual_init"],
        v["transformer"],
    )


def load_variant(path: Path) -> Dict[str, Any]:
    """A conf/variant file merged over the schema's defaults, as Hydra composes it: a file that sets only the axes
    that differ is complete here too, and an unknown or mistyped axis fails as it would in a run."""
    values = OmegaConf.load(path)
    values.pop("defaults", None)
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(VariantConfig), values))


@lru_cache(maxsize=1)
def variant_presets() -> Registry[Dict[str, Any]]:
    """Every conf/variant preset, name → all its axes (schema defaults filled in) and description."""
    reg: Registry[Dict[str, Any]] = Registry("variant")
    for path, _origin in config_files("variant", CONF_DIR):  # a plugin's conf/variant too
        values = load_variant(path)
        reg.register(path.stem, str(values["description"]))(values)
    return reg


def variant_origins() -> Dict[str, str]:
    """Preset name → "bnablate" or "plugin NAME" (what `bnablate list variants` shows once a plugin is loaded)."""
    return {path.stem: origin for path, origin in config_files("variant", CONF_DIR)}


def _effective_bias(v: Mapping[str, Any]) -> str:
    """'on'/'off' as the block factory builds it: bias 'auto' resolved for this placement and dropout order."""
    from .layers.blocks import block_order, use_bias  # the layers import torch: `bnablate list` does not need them

    ns = SimpleNamespace(**v)
    return "on" if use_bias(ns, block_order(ns, pools=False)) else "off"


def _structure(v: Mapping[str, Any]) -> tuple:
    """The canonical axes without the dropout rate and the literal bias setting: which layers, in which order."""
    norm, placement, dropout, _p, _bias, act, groups, residual, init, transformer = _canonical(v)
    return norm, placement, dropout, act, groups, residual, init, transformer


TRANSFORMER_PRESETS = "tf_"  # presets named tf_* describe transformer blocks: they name runs of transformer models only


def _transformer_model(model: Optional[str]) -> bool:
    from .models import MODELS  # imported here: the models import the layers this module's callers build

    return model is not None and model in MODELS.names() and getattr(MODELS.get(model), "transformer", False)


def variant_label(v: Mapping[str, Any], model: Optional[str] = None) -> str:
    """The preset name whose axes equal v's; else the preset with v's layer structure, with '/bias_on|off' added when
    v's built bias differs from it — the dropout rate is a column of its own (dropout_p), so a sweep over it stays
    one variant per order with dropout_p as a factor; else a compact description of the axes
    (e.g. 'batch/post_act/tanh'). The tf_* presets name only runs of a transformer `model` (a cnn with LayerNorm and
    GELU has tf_pre_ln's axes, but no transformer blocks)."""
    key = _canonical(v)
    tf = _transformer_model(model)
    presets = [(name, entry.obj) for name, entry in variant_presets().items()
               if tf or not name.startswith(TRANSFORMER_PRESETS)]
    for name, axes in presets:
        if _canonical(axes) == key:
            return name
    same_layers = [(name, axes) for name, axes in presets if _structure(axes) == _structure(v)]
    if same_layers:  # prefer the preset whose built bias is v's; else name the bias v builds
        bias = _effective_bias(v)
        return next((name for name, axes in same_layers if _effective_bias(axes) == bias),
                    f"{same_layers[0][0]}/bias_{bias}")
    norm, placement, dropout, p, bias, act, groups, residual, init, transformer = key
    label = f"{norm}{groups or ''}/{placement}/{act}"
    if transformer != _LATER_AXES["transformer"]:
        label += f"/tf_{transformer}"
    if residual != _LATER_AXES["residual"]:
        label += f"/{residual}"
    if init != _LATER_AXES["residual_init"]:
        label += f"/{init}"
    if dropout != "none":
        label += f"/{dropout}@{p:g}"
    if bias != "auto":
        label += f"/bias_{bias}"
    return label


def config_label(cfg: Mapping[str, Any]) -> str:
    """The variant label of a run's config (a DictConfig or its plain dict): its variant, in its model's terms."""
    return variant_label(cfg["variant"], cfg["model"]["name"])
