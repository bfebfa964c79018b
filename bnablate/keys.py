"""Config keys' roles, declared once on each schema field (`option(...)`), and every list of keys derived from them."""

from __future__ import annotations

import copy
import dataclasses
import enum
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Type


class Role(str, enum.Enum):
    """What a config key is, which decides where it goes (run key, tables, report factors, packs)."""

    RESULT = "result"  # can change the numbers: in the run key, a table column, a candidate report factor
    EXECUTION = "execution"  # how or where a run computes (device, threads, kernels): a table column, not in the key
    LOCATION = "location"  # a path: neither in the run key nor in the tables (the record keeps it)
    LABEL = "label"  # names, descriptions, report options: not in the run key, not a factor


NO_NEUTRAL = object()  # the key existed in the first release: it is always in the run key


def option(default: Any, role: Role, doc: str, *, neutral: Any = NO_NEUTRAL, table: Optional[bool] = None,
           pack_varies: bool = False) -> Any:
    """A schema field with its role and meaning. neutral: for a result key added after the first release, the value
    that reproduces the earlier behaviour — at that value the key is left out of the run key, so runs recorded before
    it existed keep their keys. table: whether runs.csv/results.csv get a column (default: result and execution keys
    do). pack_varies: runs that differ in this key may still share a pack (seed, optim.lr)."""
    meta = {"role": Role(role), "doc": doc, "neutral": neutral,
            "table": role in (Role.RESULT, Role.EXECUTION) if table is None else table, "pack_varies": pack_varies}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class KeySpec:
    """One leaf config key as the schema declares it."""

    key: str  # dotted, e.g. "train.batch_size"
    role: Role
    doc: str
    default: Any  # the schema's default (MISSING where a group file must set it)
    type: str
    neutral: Any
    table: bool
    pack_varies: bool
    schema: str  # the dataclass that declares it (model keys differ per model schema)

    @property
    def has_neutral(self) -> bool:
        return self.neutral is not NO_NEUTRAL


def _type_name(tp: Any) -> str:
    text = getattr(tp, "__name__", None) if not typing.get_args(tp) else None
    return text or str(tp).replace("typing.", "")


def _subclasses(cls: type) -> List[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return MISSING


def walk(schema: Type, prefix: str = "") -> Iterator[KeySpec]:
    """Every leaf key of a schema dataclass; a section typed with a base schema (ModelConfig) includes the fields of
    every subclass (MLPConfig, LeNetConfig, ...), once each."""
    seen: Dict[str, KeySpec] = {}
    for cls in [schema, *_subclasses(schema)]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                for spec in walk(tp, f"{prefix}{f.name}."):
                    seen.setdefault(spec.key, spec)
                continue
            key = f"{prefix}{f.name}"
            if key in seen:
                continue
            if "role" not in f.metadata:
                raise TypeError(f"Config key '{key}' ({cls.__name__}.{f.name}) has no role: declare it with "
                                f"option(default, Role.X, 'meaning') in bnablate/config.py.")
            m = f.metadata
            seen[key] = KeySpec(key, m["role"], m["doc"], _default(f), _type_name(tp), m["neutral"], m["table"],
                                m["pack_varies"], cls.__name__)
    yield from seen.values()


@dataclass(frozen=True)
class KeyLists:
    """Every list of keys, derived from the specs (nothing here is written by hand)."""

    specs: Tuple[KeySpec, ...]
    by_key: Dict[str, KeySpec] = field(default_factory=dict)

    @classmethod
    def of(cls, schema: Type) -> "KeyLists":
        specs = tuple(walk(schema))
        return cls(specs, {s.key: s for s in specs})

    def _where(self, pred) -> Tuple[str, ...]:
        return tuple(s.key for s in self.specs if pred(s))

    @property
    def not_in_run_key(self) -> Tuple[str, ...]:
        """Keys that say where things live, how fast they run or what they are called: out of the run key."""
        return self._where(lambda s: s.role is not Role.RESULT)

    @property
    def neutral_values(self) -> Dict[str, Any]:
        """Result keys added after the first release → the value that reproduces the earlier behaviour."""
        return {s.key: s.neutral for s in self.specs if s.has_neutral}

    @property
    def not_in_tables(self) -> Tuple[str, ...]:
        return self._where(lambda s: not s.table)

    @property
    def not_factors(self) -> Tuple[str, ...]:
        """Config keys a report never groups by: everything but result keys (seed is the replicate, not a factor)."""
        return self._where(lambda s: s.role is not Role.RESULT or s.key == "seed")

    @property
    def pack_ignores(self) -> Tuple[str, ...]:
        """Keys in which runs of one pack may differ: those marked pack_varies, and labels (each record keeps its
        own); results, execution options and locations (one data load, one output folder) must be equal."""
        return self._where(lambda s: s.pack_varies or s.role is Role.LABEL)


def override_key(item: str) -> str:
    """The config key of a Hydra override: `+a.b=1`, `~a.b` → `a.b`."""
    return item.split("=", 1)[0].lstrip("+~")


def drop_key(cfg: Dict[str, Any], dotted: str) -> None:
    """Remove a dotted key from a plain config; a section left empty by the removal goes too (a section whose every
    key is at its neutral value, like `bn` at its defaults, then hashes as if it did not exist)."""
    head, _, rest = dotted.partition(".")
    if head in cfg:
        if rest:
            if isinstance(cfg[head], dict):
                drop_key(cfg[head], rest)
                if not cfg[head]:
                    del cfg[head]
        else:
            del cfg[head]


def get_key(cfg: Dict[str, Any], dotted: str) -> Any:
    """A dotted key's value in a plain config, None where absent."""
    for part in dotted.split("."):
        if not isinstance(cfg, dict) or part not in cfg:
            return None
        cfg = cfg[part]
    return cfg


def without(cfg: Dict[str, Any], keys: Iterable[str]) -> Dict[str, Any]:
    """A deep copy of a plain config with these dotted keys removed."""
    out = copy.deepcopy(cfg)
    for k in keys:
        drop_key(out, k)
    return out
