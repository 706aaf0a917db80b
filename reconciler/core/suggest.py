"""Which documents to label next: uncertainty scores, a bounded top-K, a diversity step.

Pure ranking for ``flywheel suggest`` (active learning). The runtime streams a pool of unlabelled
documents through the active model and hands each document's per-label probabilities here; this
module scores them, keeps the best few in bounded memory and picks the final ``count``.

Strategies (:data:`STRATEGIES`):

* ``margin``: MULTI_CLASS ``1 - (p1 - p2)``, one minus the gap between the two most probable
  labels; MULTI_LABEL the least decided label, ``max over labels of 1 - |2p - 1|`` (1 when some
  label's probability is 0.5). Near-duplicates of an already picked document are dropped
  (:data:`DUPLICATE_SIMILARITY`).
* ``entropy``: MULTI_CLASS the Shannon entropy of the probabilities divided by ``log(labels)``
  (0..1); MULTI_LABEL the largest per-label binary entropy (bits, 0..1). Near-duplicates dropped
  as for ``margin``.
* ``diverse``: the ``margin`` score, then a greedy diversity step: the most uncertain candidate
  first, each next one skipped when it is too similar (:data:`DIVERSE_SIMILARITY`) to one already
  picked.
* ``random``: uniform reservoir sampling of the pool with a seed (the baseline); no scores.

Similarity is the Jaccard index of two documents' word-bigram shingle sets (lower-cased ``\\w+``
words; a one-word document is its word): deterministic, pure Python.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

STRATEGIES = ("margin", "entropy", "diverse", "random")
#: ``margin``/``entropy``: a candidate at least this similar to a picked one is a near-duplicate.
DUPLICATE_SIMILARITY = 0.9
#: ``diverse``: a candidate at least this similar to a picked one is skipped.
DIVERSE_SIMILARITY = 0.5
#: The top-K keeper holds ``CANDIDATES_PER_PICK * count`` documents for the diversity step.
CANDIDATES_PER_PICK = 10

_WORD = re.compile(r"\w+")


def uncertainty(scores: Mapping[str, float], mode: str, strategy: str) -> float:
    """How unsure the model is of one document, 0 (sure) .. 1; ``scores``: label -> probability.

    ``mode`` is ``MULTI_CLASS`` or ``MULTI_LABEL``; ``strategy`` one of :data:`STRATEGIES` but
    ``random`` (``diverse`` ranks by margin).
    """
    if strategy not in STRATEGIES or strategy == "random":
        raise ValueError(f"no uncertainty score for strategy {strategy!r}")
    values = [min(1.0, max(0.0, float(p))) for p in scores.values()]
    if not values:
        raise ValueError("no scores")
    if mode == "MULTI_LABEL":
        if strategy == "entropy":
            return max(_binary_entropy(p) for p in values)
        return max(1.0 - abs(2.0 * p - 1.0) for p in values)
    if mode != "MULTI_CLASS":
        raise ValueError(f"unknown mode {mode!r}")
    if strategy == "entropy":
        total = sum(values)
        if len(values) < 2 or total <= 0:
            return 0.0
        entropy = -sum(p / total * math.log(p / total) for p in values if p > 0)
        return min(1.0, entropy / math.log(len(values)))
    top = heapq.nlargest(2, values)
    second = top[1] if len(top) > 1 else 0.0
    return 1.0 - (top[0] - second)


def _binary_entropy(p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


@dataclass(frozen=True)
class Candidate:
    """One pool document: where it was (``line``, 1-based), the model's guess and the score."""

    line: int
    text: str
    score: float
    guess: tuple[str, ...] = ()
    guess_probability: float = 0.0


def normalised(text: str) -> str:
    """The text as the duplicate checks see it: lower-cased words, single-spaced."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str) -> frozenset[str]:
    """Word-bigram shingles of ``text`` (its one word, for a one-word document)."""
    words = _WORD.findall(text.lower())
    if len(words) < 2:
        return frozenset(words)
    return frozenset(f"{a} {b}" for a, b in itertools.pairwise(words))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """``len(a & b) / len(a | b)``; two empty sets are the same (1.0)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass
class TopK:
    """The ``size`` highest-scoring candidates seen, in O(size) memory (a min-heap).

    Ties go to the earlier line. Exact duplicates (the same :func:`normalised` text) are kept
    once, the first seen, so a pool of repeated documents cannot fill the keeper.
    """

    size: int
    _heap: list[tuple[float, int, Candidate]] = field(default_factory=list)
    _keys: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("the keeper's size must be at least 1")

    def offer(self, candidate: Candidate) -> None:
        key = normalised(candidate.text)
        if key in self._keys:
            return
        entry = (candidate.score, -candidate.line, candidate)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, entry)
        elif entry[:2] > self._heap[0][:2]:
            dropped = heapq.heapreplace(self._heap, entry)[2]
            del self._keys[normalised(dropped.text)]
        else:
            return
        self._keys[key] = candidate.line

    def __len__(self) -> int:
        return len(self._heap)

    def best_first(self) -> list[Candidate]:
        return [c for _, _, c in sorted(self._heap, key=lambda e: (-e[0], -e[1]))]


def select(candidates: Iterable[Candidate], count: int, threshold: float) -> list[Candidate]:
    """Greedy: take candidates best first (as given), skipping any whose shingle set is at least
    ``threshold`` similar (Jaccard) to one already taken, until ``count`` are taken."""
    picked: list[Candidate] = []
    picked_shingles: list[frozenset[str]] = []
    for candidate in candidates:
        if len(picked) >= count:
            break
        mine = shingles(candidate.text)
        if any(jaccard(mine, other) >= threshold for other in picked_shingles):
            continue
        picked.append(candidate)
        picked_shingles.append(mine)
    return picked


def threshold_of(strategy: str) -> float:
    """The similarity at which :func:`select` skips a candidate, per strategy."""
    return DIVERSE_SIMILARITY if strategy == "diverse" else DUPLICATE_SIMILARITY


def keeper_size(count: int, strategy: str) -> int:
    """How many candidates to keep for ``count`` picks: a multiple, so that skipped
    near-duplicates leave others to pick from."""
    return count * CANDIDATES_PER_PICK


@dataclass
class Reservoir:
    """A uniform sample of ``size`` items of a stream of unknown length (Algorithm R), seeded:
    the same seed and stream give the same sample. Kept in stream order."""

    size: int
    seed: int = 0
    _seen: int = 0
    _items: list[Candidate] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def offer(self, candidate: Candidate) -> None:
        self._seen += 1
        if len(self._items) < self.size:
            self._items.append(candidate)
            return
        slot = self._random.randrange(self._seen)
        if slot < self.size:
            self._items[slot] = candidate

    def __len__(self) -> int:
        return len(self._items)

    def sample(self) -> list[Candidate]:
        return sorted(self._items, key=lambda c: c.line)


def keeper_for(strategy: str, count: int, seed: int = 0) -> TopK | Reservoir:
    """What holds a pool's candidates while it streams past, for ``strategy``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}")
    if strategy == "random":
        return Reservoir(count, seed)
    return TopK(keeper_size(count, strategy))


def scored_by(strategy: str) -> str:
    """The uncertainty score a strategy ranks by (``diverse``: margin; ``random`` shows margin
    for review, it does not rank)."""
    return "margin" if strategy in ("random", "diverse") else strategy


def chosen(keeper: TopK | Reservoir, count: int, strategy: str) -> list[Candidate]:
    """The final picks once the pool has streamed past: the sample (``random``), or the diversity
    step over the kept candidates, best first."""
    if isinstance(keeper, Reservoir):
        return keeper.sample()
    return select(keeper.best_first(), count, threshold_of(strategy))
