"""Data drift: how a new dataset version differs from the data the active model was trained on.

Pure: documents in (labels and text, streamed one at a time), figures out. The prepare stage
feeds it the active model version's TRAIN datasets (the *reference*) and each new dataset
(:mod:`reconciler.stages.prepare`); the iteration record keeps what it gives
(:class:`reconciler.core.state.DataDrift`).

Three figures per new dataset:

- **Label PSI**, the population stability index of the label distribution::

      PSI = sum over labels L of (a_L - e_L) * ln(a_L / e_L)

  ``e_L`` is label ``L``'s share of the reference, ``a_L`` its share of the new data, over every
  label either side has. A share of 0 (an empty bin: a label one side never has) is replaced by
  :data:`EPSILON` (1e-4) before the sum, so an unseen label counts heavily but finitely; the
  shares are not renormalised after that. Identical distributions give 0. The usual reading:
  below 0.1 little shift, 0.1 to 0.25 moderate, above 0.25 large (:func:`psi_reading`).
  MULTI_LABEL documents carry several labels: each label's *presence rate* (the share of
  documents carrying it) is counted, and the rates are normalised to sum to one, i.e. the shares
  are of label occurrences. A MULTI_CLASS document has one label, so there the two agree.
- **Unseen-token share** (out of vocabulary): the share of the new data's token *occurrences*
  whose token never occurs in the reference. Tokens as the recipes' word analyzer makes them
  (scikit-learn's TF-IDF default): lowercased (unless the recipe says not to), then every
  match of ``(?u)\\b\\w\\w+\\b`` (two or more word characters). The reference vocabulary is
  capped at :data:`VOCABULARY_CAP` distinct tokens to bound memory: past it, new distinct
  tokens of the reference are no longer added (``capped`` says so), so the share is then an
  upper bound (a token the reference has only past the cap counts as unseen).
- **Document length** in characters: the mean and median, and the ratio of the new mean to
  the reference mean.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.spec import DriftThresholds
from reconciler.core.state import IterationRecord, IterationStatus

#: The share an empty bin is given in the PSI sum (an unseen label; a label no longer seen).
EPSILON = 1e-4
#: At most this many distinct reference tokens are kept (see the module docstring).
VOCABULARY_CAP = 200_000
#: scikit-learn's ``TfidfVectorizer`` default ``token_pattern``, which the recipes use.
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
#: PSI readings: below the first little, up to the second moderate, above it large.
PSI_MODERATE, PSI_LARGE = 0.1, 0.25


def tokens(text: str, *, lowercase: bool = True) -> list[str]:
    """The word analyzer's tokens of ``text`` (unigrams)."""
    return TOKEN_PATTERN.findall(text.lower() if lowercase else text)


def psi(expected: Mapping[str, float], actual: Mapping[str, float],
        epsilon: float = EPSILON) -> float | None:
    """The PSI of ``actual`` against ``expected`` (counts or weights per label; each side is
    normalised to shares). None when either side is empty (nothing to compare)."""
    e_total, a_total = sum(expected.values()), sum(actual.values())
    if e_total <= 0 or a_total <= 0:
        return None
    total = 0.0
    for label in sorted(set(expected) | set(actual)):
        e = expected.get(label, 0) / e_total or epsilon
        a = actual.get(label, 0) / a_total or epsilon
        total += (a - e) * math.log(a / e)
    return max(total, 0.0)


def psi_reading(value: float | None) -> str:
    """The usual reading of a PSI: ``little`` (< 0.1), ``moderate`` (0.1 to 0.25), ``large``."""
    if value is None:
        return "not measured"
    if value < PSI_MODERATE:
        return "little shift"
    return "moderate shift" if value <= PSI_LARGE else "large shift"


@dataclass
class Sample:
    """Documents counted one at a time: label presence, lengths and token occurrences.

    ``vocabulary`` (optional) collects the distinct tokens, at most ``cap`` of them: a reference
    keeps one. ``known`` (optional) is a reference vocabulary: tokens not in it count as unseen.
    """

    lowercase: bool = True
    vocabulary: set[str] | None = None
    known: set[str] | frozenset[str] | None = None
    cap: int = VOCABULARY_CAP
    documents: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)
    token_count: int = 0
    unseen_count: int = 0
    capped: bool = False

    def add(self, labels: Iterable[str], text: str, words: list[str] | None = None) -> None:
        """Count one document; ``words``: its :func:`tokens` when already made (one
        tokenisation for several samples)."""
        self.documents += 1
        self.labels.update(set(labels))  # presence: a label counts once per document
        self.lengths.append(len(text))
        if words is None:
            words = tokens(text, lowercase=self.lowercase)
        self.token_count += len(words)
        if self.known is not None:
            self.unseen_count += sum(1 for word in words if word not in self.known)
        if self.vocabulary is not None and not self.capped:
            fresh = [word for word in dict.fromkeys(words) if word not in self.vocabulary]
            room = self.cap - len(self.vocabulary)
            if len(fresh) > room:  # the first ``room`` of them, in the order they occur
                self.capped, fresh = True, fresh[:room]
            self.vocabulary.update(fresh)

    @property
    def mean_length(self) -> float | None:
        return sum(self.lengths) / len(self.lengths) if self.lengths else None

    @property
    def median_length(self) -> float | None:
        return float(statistics.median(self.lengths)) if self.lengths else None


def reference_sample(*, lowercase: bool = True, cap: int = VOCABULARY_CAP) -> Sample:
    """An empty reference: it keeps a vocabulary (up to ``cap`` distinct tokens)."""
    return Sample(lowercase=lowercase, vocabulary=set(), cap=cap)


def new_sample(reference: Sample) -> Sample:
    """An empty sample measured against ``reference`` (complete it first)."""
    return Sample(lowercase=reference.lowercase, known=reference.vocabulary or frozenset())


def measure(reference: Sample, new: Sample) -> dict[str, Any]:
    """The figures of ``new`` against ``reference``, as the record's camelCase keys
    (``labelPsi``, ``oovShare``, ``meanLength``, ``medianLength``, ``lengthRatio``,
    ``documents``); a figure that cannot be computed (no documents, no tokens) is None."""
    mean, reference_mean = new.mean_length, reference.mean_length
    return {
        "labelPsi": _rounded(psi(reference.labels, new.labels)),
        "oovShare": _rounded(new.unseen_count / new.token_count if new.token_count else None),
        "meanLength": _rounded(mean),
        "medianLength": _rounded(new.median_length),
        "lengthRatio": _rounded(mean / reference_mean if mean is not None and reference_mean
                                else None),
        "documents": new.documents,
    }


def describe_reference(reference: Sample, version: str) -> dict[str, Any]:
    """The record's ``reference``: which version, how many documents and distinct tokens."""
    return {
        "version": version,
        "documents": reference.documents,
        "vocabulary": len(reference.vocabulary or ()),
        "vocabularyCapped": reference.capped,
        "meanLength": _rounded(reference.mean_length),
        "medianLength": _rounded(reference.median_length),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(frozen=True)
class DriftFinding:
    """A new dataset past a declared drift threshold, in the iteration that measured it."""

    iteration: str
    dataset: str  # a dataset's name, or "all new TRAIN data"
    figure: str  # labelPsi | unseenTokens | lengthRatio
    value: float
    threshold: float

    @property
    def reason(self) -> str:
        return {"labelPsi": "LabelShift", "unseenTokens": "UnseenTokens"}.get(
            self.figure, "LengthChange")

    @property
    def message(self) -> str:
        shown = {"labelPsi": f"label PSI {self.value:.3f} > {self.threshold:.3f}",
                 "unseenTokens": f"unseen tokens {self.value:.1%} > {self.threshold:.1%}",
                 "lengthRatio": f"documents {self.value:.2f}x the length (> "
                                f"{self.threshold:.2f}x)"}[self.figure]
        return f"{self.dataset} in iteration {self.iteration}: {shown}"


def findings(records: Sequence[IterationRecord], limits: DriftThresholds | None
             ) -> list[DriftFinding]:
    """What the newest iteration that measured drift found past ``limits`` (largest first by
    how far past): a later iteration on new data that is within them clears it."""
    if limits is None:
        return []
    measured = next((r for r in reversed(records) if r.drift is not None
                     and r.status is IterationStatus.COMPLETED), None)
    if measured is None or measured.drift is None:
        return []
    drift = measured.drift
    named = [*drift.datasets.items(),
             *([("all new TRAIN data", drift.new_train_data)] if drift.new_train_data
               and len(drift.datasets) > 1 else [])]
    found = []
    for name, figures in named:
        ratio = figures.length_ratio
        checks = (("labelPsi", figures.label_psi, limits.max_label_psi),
                  ("unseenTokens", figures.oov_share, limits.max_unseen_tokens),
                  ("lengthRatio", max(ratio, 1 / ratio) if ratio else None,
                   limits.max_length_ratio))
        found += [DriftFinding(measured.flywheel_iteration_id, name, figure, value, limit)
                  for figure, value, limit in checks
                  if value is not None and limit is not None and value > limit]
    return sorted(found, key=lambda f: -(f.value / f.threshold if f.threshold else f.value))
