"""`--tune` values as a search space: lists (a grid, as before) or ranges in hydra-optuna-sweeper's grammar
(`interval(0,0.1)`, `tag(log,interval(1e-4,1e-1))`, `tag(int,interval(1,8))`), checked before anything trains and
turned into Optuna distributions for the study (bnablate/tune_study.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .train import ConfigError

TAGS = ("log", "int")  # the tags hydra-optuna-sweeper gives a range: log scale, integer values
EDGE = 0.10  # a selected value within the outer 10 % of a range (in log space for log ranges) is flagged


@dataclass(frozen=True)
class Range:
    """A numeric range to sample from: [low, high], on a log scale or not, integer or not."""
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def text(self) -> str:
        tags = [t for t, on in (("log", self.log), ("int", self.integer)) if on]
        inner = f"interval({_num(self.low, self.integer)},{_num(self.high, self.integer)})"
        return f"tag({','.join(tags)},{inner})" if tags else inner

    def ends(self) -> List[str]:
        """The two ends as override values (what plan_tuning checks before a study trains)."""
        return [_num(self.low, self.integer), _num(self.high, self.integer)]

    def distribution(self):
        from optuna.distributions import FloatDistribution, IntDistribution  # lazy: a keystroke never imports Optuna

        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def position(self, value: float) -> float:
        """Where value lies in the range, 0 (low) … 1 (high), in log space for a log range."""
        lo, hi, x = ((math.log(v) for v in (self.low, self.high, value)) if self.log
                     else (self.low, self.high, value))
        return (x - lo) / (hi - lo)


def _num(x: float, integer: bool) -> str:
    return str(int(x)) if integer else repr(float(x))


def parse_range(key: str, item: str, sweep: Any, type_name: str) -> Range:
    """An IntervalSweep of Hydra's grammar → a Range; ConfigError naming the fix for an unknown tag, an empty or
    reversed interval, a log range touching 0, or a key that is not numeric."""
    tags = set(sweep.tags)
    unknown = sorted(tags - set(TAGS))
    if unknown:
        raise ConfigError(f"--tune {item}: unknown tag {', '.join(unknown)}; a range takes the tags "
                          f"{' and '.join(TAGS)}, e.g. --tune {key}='tag(log,interval(1e-4,1e-1))'.")
    if "float" not in type_name and "int" not in type_name:
        raise ConfigError(f"--tune {item}: {key} is a {type_name} key, and a range needs a number; give its values "
                          f"as a list instead, e.g. --tune {key}=a,b,c.")
    low, high = float(sweep.start), float(sweep.end)
    if not low < high:
        raise ConfigError(f"--tune {item}: the interval's low end must be below its high end; write "
                          f"interval({min(low, high):g},{max(low, high):g}).")
    integer = "int" in tags or ("int" in type_name and "float" not in type_name)
    if integer and (low != int(low) or high != int(high)):
        raise ConfigError(f"--tune {item}: {key} takes integers; give integer ends, e.g. interval({math.ceil(low)},"
                          f"{math.floor(high)}).")
    if "log" in tags and low <= 0:
        raise ConfigError(f"--tune {item}: a log range must stay above 0 (log 0 is −∞); start it at a small "
                          f"positive value, e.g. tag(log,interval({high / 1000:g},{high:g})).")
    return Range(low, high, log="log" in tags, integer=integer)


@dataclass(frozen=True)
class Space:
    """What --tune searches: per key either a list of values (text, in the declared order) or a Range."""
    dims: Tuple[Tuple[str, Any], ...]  # (key, List[str] | Range), in the declared order

    @property
    def keys(self) -> List[str]:
        return [k for k, _ in self.dims]

    @property
    def has_range(self) -> bool:
        return any(isinstance(v, Range) for _, v in self.dims)

    def grid(self) -> Dict[str, List[str]]:
        """key → values, for a space of lists only."""
        return {k: list(v) for k, v in self.dims}

    def text(self) -> str:
        return "; ".join(f"{k}={v.text() if isinstance(v, Range) else ','.join(v)}" for k, v in self.dims)

    def distributions(self) -> Dict[str, Any]:
        from optuna.distributions import CategoricalDistribution

        return {k: v.distribution() if isinstance(v, Range) else CategoricalDistribution(list(v))
                for k, v in self.dims}

    def edge_notes(self, values: Dict[str, str]) -> List[str]:
        """For selected values (key → text): which lie on a list's numeric edge or in a range's outer EDGE — the
        optimum may lie outside what was searched."""
        notes = []
        for key, dim in self.dims:
            if key not in values or values[key] in ("", None):
                continue
            value = _float(values[key])
            if value is None:
                continue  # not a number: no position to judge
            if isinstance(dim, Range):
                pos = dim.position(value)
                if pos <= EDGE or pos >= 1 - EDGE:
                    side = "low" if pos <= EDGE else "high"
                    notes.append(f"{key}={values[key]} lies in the {side} {EDGE:.0%} of the range {dim.text()}"
                                 f"{' (log scale)' if dim.log else ''}: the best value may lie outside it; widen "
                                 f"the range on that side.")
            else:
                nums = [_float(v) for v in dim]
                if any(n is None for n in nums) or len(nums) < 3:
                    continue  # a categorical list, or two points: no inside to compare with
                if value in (min(nums), max(nums)):
                    side = "smallest" if value == min(nums) else "largest"
                    notes.append(f"{key}={values[key]} is the grid's {side} value ({','.join(dim)}): the best "
                                 f"value may lie beyond it; extend the grid on that side.")
        return notes


def _float(text: Any) -> Optional[float]:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def value_text(value: Any) -> str:
    """An Optuna parameter as override text that parses back to the same value (floats by repr: no rounding)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def space_from(text: str) -> Optional[Space]:
    """A Space back from its text (selection.csv's `space` column), for the report's edge warnings; None if
    unreadable."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    dims: List[Tuple[str, Any]] = []
    try:
        for item in (i.strip() for i in text.split(";")):
            ov = parser.parse_overrides([item])[0]
            if ov.is_interval_sweep():
                dims.append((ov.key_or_group, parse_range(ov.key_or_group, item, ov.value(), "float")))
            else:
                dims.append((ov.key_or_group, list(ov.sweep_string_iterator()) if ov.is_sweep_override()
                             else [ov.get_value_element_as_str()]))
    except Exception:  # noqa: BLE001  (an older selection.csv: no warning rather than a crash)
        return None
    return Space(tuple(dims))

