"""Which runs of a sweep train together: the pack options parsed once, and one plan (packs and lone runs, each with
its reason) that the sweep executes and `bnablate sweep --dry-run` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from omegaconf import DictConfig

from ..registry import check_choice
from ..errors import ConfigError
from ..train.execution import resolve_device
from .memory import CPU_PACK_SIZE, MEMORY_FRACTION, auto_pack_size, parse_pack_size
from .model import check_pack_impl
from .rules import pack_key, packable


class PackMode(Enum):
    """The `pack` option. The schema keeps it a string because Hydra's override grammar and its basic sweeper turn
    `pack=true` (and a preset's `"false"`) into booleans, which an OmegaConf enum node rejects; it is parsed here,
    once, into this enum."""

    AUTO = "auto"  # on CUDA; on a CPU at train.batch_size ≤ model.cpu_pack_max_batch
    TRUE = "true"  # whenever the runs can pack
    FALSE = "false"  # never


def pack_mode(cfg: DictConfig) -> PackMode:
    """cfg.pack as a PackMode (a YAML/override bool reads as true/false); ConfigError naming the choices otherwise."""
    text = str(cfg.pack).lower()
    check_choice("pack", text, [m.value for m in PackMode], ConfigError)
    return PackMode(text)


def check_pack_options(cfg: DictConfig) -> PackMode:
    """Every pack option of one job checked (pack, pack_size, pack_impl); returns its mode."""
    mode = pack_mode(cfg)
    try:
        parse_pack_size(cfg.pack_size)
    except ValueError:
        raise ConfigError(f"pack_size must be auto or an integer ≥ 1, got {cfg.pack_size}.") from None
    check_pack_impl(str(cfg.pack_impl))
    return mode


def why_alone(cfg: DictConfig) -> Optional[str]:
    """None if this job may share a pack (its pack mode, device and batch size allow it), else why it trains alone."""
    mode = check_pack_options(cfg)
    if mode is PackMode.FALSE:
        return "pack=false"
    reason = packable([cfg])
    if reason or mode is PackMode.TRUE or resolve_device(cfg.device).type == "cuda":
        return reason
    batch, cap = int(cfg.train.batch_size), int(cfg.model.cpu_pack_max_batch)
    if batch > cap:
        return f"pack=auto on a CPU packs model={cfg.model.name} only at train.batch_size ≤ model.cpu_pack_max_batch=" \
               f"{cap} (where packing measured faster); this run has {batch}"
    return None


def why_packed(cfg: DictConfig) -> str:
    """The rule that lets a packable job pack (why_alone returned None)."""
    if pack_mode(cfg) is PackMode.TRUE:
        return "pack=true"
    if resolve_device(cfg.device).type == "cuda":
        return "pack=auto on CUDA"
    return f"pack=auto on a CPU at train.batch_size={cfg.train.batch_size} ≤ model.cpu_pack_max_batch=" \
           f"{cfg.model.cpu_pack_max_batch}"


def pack_size(cfg: DictConfig, data_bytes: Callable[[], int] = lambda: 0) -> Tuple[int, str]:
    """The most runs one pack of cfg's group holds, and the rule that gave it. data_bytes: the bytes of the dataset a
    pack holds on the GPU beside its runs (asked for only by pack_size=auto on CUDA)."""
    size = parse_pack_size(cfg.pack_size)
    if size is not None:
        return size, f"pack_size={size}"
    device = resolve_device(cfg.device)
    if device.type != "cuda":
        return CPU_PACK_SIZE, f"pack_size=auto: {CPU_PACK_SIZE} on a CPU"
    size = auto_pack_size(cfg, device, data_bytes())
    return size, f"pack_size=auto: {size} fit in {MEMORY_FRACTION:.0%} of the GPU's free memory"


@dataclass
class Group:
    """Jobs (indices into the planned configs) that train together — a pack, or one lone run — and why."""

    indices: List[int]
    reason: str


@dataclass
class PackPlan:
    packs: List[Group] = field(default_factory=list)  # ≥ 2 jobs each, trained in this process before the launcher
    lone: List[Group] = field(default_factory=list)  # one job each, trained by the launcher
    finished: List[int] = field(default_factory=list)  # jobs whose record is already there (skipped)

    def describe(self, labels: Sequence[str], limit: int = 3) -> List[str]:
        """Printable lines: each pack with its jobs, lone runs grouped by reason (a few labels each), finished jobs."""
        lines = [f"pack of {len(g.indices)} ({g.reason}): " + "; ".join(labels[i] for i in g.indices)
                 for g in self.packs]
        by_reason: Dict[str, List[int]] = {}
        for g in self.lone:
            by_reason.setdefault(g.reason, []).extend(g.indices)
        for reason, idx in by_reason.items():
            shown = "; ".join(labels[i] for i in idx[:limit]) + (f"; … {len(idx) - limit} more" if len(idx) > limit
                                                                 else "")
            lines.append(f"{len(idx)} alone ({reason}): {shown}")
        if self.finished:
            lines.append(f"{len(self.finished)} already finished (skipped)")
        return lines


def plan_packs(configs: Sequence[DictConfig], done: Sequence[bool],
               data_bytes: Callable[[DictConfig], int] = lambda cfg: 0, no_packs: Optional[str] = None) -> PackPlan:
    """The sweep's one packing decision: unfinished jobs that may pack (why_alone) and share a pack key are cut into
    packs of at most pack_size; every other job trains alone, with its reason. no_packs: a reason no job packs at
    all (a parallel launcher trains each job in its own worker)."""
    plan = PackPlan()
    groups: Dict[str, List[int]] = {}
    for i, cfg in enumerate(configs):
        if done[i]:
            plan.finished.append(i)
            continue
        reason = no_packs or why_alone(cfg)
        if reason:
            plan.lone.append(Group([i], reason))
        else:
            groups.setdefault(pack_key(cfg), []).append(i)
    for members in groups.values():
        first = configs[members[0]]
        if len(members) == 1:
            plan.lone.append(Group(members, "no other unfinished job differs from it only in seed or optim.lr"))
            continue
        size, size_rule = pack_size(first, lambda: data_bytes(first))
        for start in range(0, len(members), size):
            chunk = members[start:start + size]
            if len(chunk) > 1:
                plan.packs.append(Group(chunk, f"{why_packed(first)}; {size_rule}"))
            else:
                plan.lone.append(Group(chunk, f"left over after packs of {size} ({size_rule})"))
    return plan
