"""`--goal best`: which variant of a family is best, read off the family's all-pairs intervals (one race state per
look). A variant decided worse than any other is eliminated and gets no more seeds; the race is won when a survivor
is certified within the margin of every other survivor (then, by the chain of eliminations, of every variant).

Why this is valid: the family's pairwise intervals cover their true differences simultaneously with probability
≥ 1 − α (Bonferroni over all g(g − 1)/2 pairs, at any look for the anytime-valid design). On that event no
variant is eliminated by one that is truly worse, and a certified X has μ_X > μ_Y − m for every survivor Y; an
eliminated Z lost to some W, W to a survivor or to another eliminated one, and the chain ends at a survivor S, so
μ_Z < μ_S < μ_X + m. The claim "X is within ±m of the best" is therefore wrong with probability ≤ α however many
looks the race took (the successive-elimination and racing designs of Even-Dar et al. 2006, Maron & Moore's Hoeffding
races and F-Race, with Hsu's 1984 multiple comparisons with the best as the claim; here on the project's intervals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Sequence, Tuple

Pair = Tuple[str, str]


@dataclass
class Race:
    groups: List[str]
    survivors: List[str]
    eliminated: Dict[str, str] = field(default_factory=dict)  # loser → a variant decided better than it
    certified: List[str] = field(default_factory=list)  # survivors within the margin of every other survivor
    tied: bool = False  # every pair of survivors is equivalent

    @property
    def done(self) -> bool:
        return bool(self.certified)

    def claim(self, margin_text: str) -> str:
        """The sentence the report prints for the family."""
        if len(self.survivors) == 1:
            return f"best: {self.survivors[0]} (decided better than every other, directly or through those it beat)"
        if self.tied:
            return f"tied for best within {margin_text}: {', '.join(self.survivors)} (every pair equivalent)"
        if self.certified:
            others = [s for s in self.survivors if s not in self.certified]
            return (f"best: {' or '.join(self.certified)}, within {margin_text} of every other"
                    + (f" (still in the race: {', '.join(others)})" if others else ""))
        return f"undecided: {', '.join(self.survivors)} remain in the race"


def race(groups: Sequence[str], intervals: Mapping[Pair, Tuple[float, float]], margin: float) -> Race:
    """The race state from the all-pairs intervals `intervals[(a, b)] = (low, high)` of μ_a − μ_b, oriented so that
    larger is better (negate a loss's intervals first), for the declared `margin` (> 0)."""
    def lo(a: str, b: str) -> float:  # lower bound of μ_a − μ_b, whichever way the pair was stored
        return intervals[(a, b)][0] if (a, b) in intervals else -intervals[(b, a)][1]

    groups = list(groups)
    eliminated = {}
    for g in groups:
        beaters = [h for h in groups if h != g and ((h, g) in intervals or (g, h) in intervals) and lo(h, g) > 0]
        if beaters:
            eliminated[g] = beaters[0]
    survivors = [g for g in groups if g not in eliminated]
    pairs_known = lambda x, y: (x, y) in intervals or (y, x) in intervals  # noqa: E731 (one use below)
    certified = [x for x in survivors if all(pairs_known(x, y) and lo(x, y) > -margin for y in survivors if y != x)]
    tied = len(survivors) > 1 and all(lo(x, y) > -margin and lo(y, x) > -margin
                                      for i, x in enumerate(survivors) for y in survivors[i + 1:] if pairs_known(x, y))
    return Race(groups, survivors, eliminated, certified, tied and len(certified) == len(survivors))


__all__ = ["Race", "race"]
