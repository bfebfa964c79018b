"""Variant presets (conf/variant/*.yaml) as a registry, and the label that names a run's variant in tables."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Mapping

from omegaconf import OmegaConf

from .config import CONF_DIR
from .registry import Registry

AXES = ("norm", "placement", "dropout", "dropout_p", "bias", "activation", "groups")


def _canonical(v: Mapping[str, Any]) -> tuple:
    """The axes that change the network: placement 'none' and norm 'none' both mean no norm; dropout_p matters
    only with dropout, groups only with group norm."""
    norm_on = v["norm"] != "none" and v["placement"] != "none"
    return (
        v["norm"] if norm_on else "none",
        v["placement"] if norm_on else "none",
        v["dropout"],
        float(v["dropout_p"]) if v["dropout"] != "none" else None,
        v["bias"],
        v["activation"],
        int(v["groups"]) if norm_on and v["norm"] == "group" else None,
    )


@lru_cache(maxsize=1)
def variant_presets() -> Registry[Dict[str, Any]]:
    """Every conf/variant preset (except schema bases), name → its axes and description."""
    reg: Registry[Dict[str, Any]] = Registry("variant")
    for path in sorted((CONF_DIR / "variant").glob("*.yaml")):
        values = OmegaConf.to_container(OmegaConf.load(path))
        values.pop("defaults", None)
        reg.register(path.stem, str(values.get("description", "")))(values)
    return reg


def variant_label(v: Mapping[str, Any]) -> str:
    """The preset name whose axes equal v's, else a compact description of the axes (e.g. 'batch/post_act/tanh')."""
    key = _canonical(v)
    for name, entry in variant_presets().items():
        if all(a in entry.obj for a in AXES) and _canonical(entry.obj) == key:
            return name
    norm, placement, dropout, p, bias, act, groups = key
    label = f"{norm}{groups or ''}/{placement}/{act}"
    if dropout != "none":
        label += f"/{dropout}@{p:g}"
    if bias != "auto":
        label += f"/bias_{bias}"
    return label
