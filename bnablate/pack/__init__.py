"""Packed training: K runs of one architecture in one pass — the plan (which runs pack, and why), the packed model
and per-run learning rates, the grouped kernels, and pack_size=auto."""

from .memory import auto_pack_size, fit_pack_size, parse_pack_size
from .model import PACK_IMPLS, PackedModel, PerRunLR, check_pack_impl
from .plan import Group, PackMode, PackPlan, check_pack_options, pack_mode, pack_size, plan_packs, why_alone
from .rules import pack_key, packable

__all__ = ["Group", "PACK_IMPLS", "PackMode", "PackPlan", "PackedModel", "PerRunLR", "auto_pack_size",
           "check_pack_impl", "check_pack_options", "fit_pack_size", "pack_key", "pack_mode", "pack_size",
           "packable", "parse_pack_size", "plan_packs", "why_alone"]
