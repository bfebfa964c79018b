"""Name → builder registries (timm/torchvision style): duplicate names are errors, unknown names suggest the closest."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, Iterable, Iterator, List, Tuple, Type, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists the valid names and the closest match."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """" Did you mean 'X'?" for the valid name closest to `name`, or "" when none is close."""
    valid = [str(v) for v in valid]
    same_case = [v for v in valid if v.lower() == str(name).lower()]  # CIFAR100 → cifar100: a case slip is close
    close = same_case or difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name_message(kind: str, name: str, valid: List[str]) -> str:
    return f"Unknown {kind} '{name}'.{did_you_mean(name, valid)} Choose one of: {', '.join(sorted(valid))}."


def check_choice(key: str, value: Any, choices: Iterable[str], error: Type[Exception] = ValueError) -> None:
    """Raise `error` with the one message style for a value that is not among a key's choices (closest match named),
    e.g. check_choice("train.precision", "fp16", PRECISIONS, ConfigError)."""
    valid = [str(c) for c in choices]
    if str(value) not in valid:
        raise error(unknown_name_message(key, str(value), valid))


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str


class Registry(Generic[T]):
    """A named collection of builders; `register` is usable as a decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, Entry[T]] = {}

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"Duplicate {self.kind} name '{name}': already registered by {self._entries[name].obj!r}.")
            doc = description or (getattr(obj, "__doc__", None) or "").strip().splitlines()[0:1]
            text = doc if isinstance(doc, str) else (doc[0] if doc else "")
            self._entries[name] = Entry(name, obj, text)
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name].obj
        except KeyError:
            raise UnknownNameError(unknown_name_message(self.kind, name, list(self._entries))) from None

    def entry(self, name: str) -> Entry[T]:
        self.get(name)
        return self._entries[name]

    def names(self) -> List[str]:
        return list(self._entries)

    def items(self) -> Iterator[Tuple[str, Entry[T]]]:
        return iter(self._entries.items())

    def __contains__(self, name: Any) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
