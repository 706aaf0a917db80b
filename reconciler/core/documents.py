"""Labelled documents and the pure logic of a corpus: holdout, train/test overlap, label coverage.

The datasets adapter reads the documents (``reconciler/adapters/comprehend_csv.py``) and scans a
corpus (``reconciler/adapters/corpus.py``); the stages train and score on them. Nothing here
reads a file.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.core.spec import Dataset, DatasetType, FlywheelSpec
from reconciler.core.state import TestSource
from reconciler.errors import MAX_LISTED, DataError, FlywheelError


@dataclass(frozen=True, slots=True)
class Document:
    labels: frozenset[str]
    text: str
    line: int  # the row of its dataset file it came from (errors name it)


@dataclass(frozen=True)
class Corpus:
    """The documents of one iteration: training pool and test data, ready to fit and score."""

    train: list[Document]
    test: list[Document]
    test_source: TestSource


@dataclass(frozen=True)
class CorpusSummary:
    """What a corpus check found: the counts of a corpus, none of its documents."""

    number_of_train_documents: int
    number_of_test_documents: int
    train_label_counts: Counter[str]
    test_label_counts: Counter[str]
    test_source: TestSource


class Problems:
    """The problems of one file: the first ``MAX_LISTED`` kept, the others counted."""

    def __init__(self) -> None:
        self.kept: list[FlywheelError] = []
        self.unlisted = 0

    @property
    def listing(self) -> bool:
        """The next problem will be listed (so it is worth explaining in full)."""
        return len(self.kept) < MAX_LISTED

    def add(self, problem: FlywheelError) -> None:
        if self.listing:
            self.kept.append(problem)
        else:
            self.unlisted += 1

    def raise_if_any(self) -> None:
        if self.kept:
            first = self.kept[0]
            first.others = tuple(self.kept[1:])
            first.unlisted = self.unlisted
            raise first


def listed(items: list[str], limit: int = 12) -> str:
    """``a, b, c … and N more``: a list is never cut silently (long items are shortened)."""
    shown = ", ".join(item if len(item) <= 40 else item[:39] + "…" for item in items[:limit])
    return shown + (f" … and {len(items) - limit} more" if len(items) > limit else "")


def label_counts(sets: Counter[frozenset[str]]) -> Counter[str]:
    """Documents per label, from documents per label set."""
    counts: Counter[str] = Counter()
    for labels, count in sets.items():
        for label in labels:
            counts[label] += count
    return counts


def text_key(text: str) -> bytes:
    """A document's identity for the overlap check: a hash of its text after Unicode NFKC,
    case folding and whitespace collapsing, so a copy that differs only in those still counts."""
    if text.isascii():  # the common case, 4x quicker: NFKC leaves ASCII alone
        folded = text.lower()
    else:
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return hashlib.blake2b(" ".join(folded.split()).encode(), digest_size=16).digest()


def check_overlap(spec: FlywheelSpec, keyed: list[tuple[Dataset, set[bytes]]],
                  spec_path: str | None = None,
                  lines_of: Callable[..., int | None] | None = None) -> None:
    """Refuse TRAIN documents that are also TEST documents (by :func:`text_key`).

    ``keyed`` holds the :func:`text_key` digests of every TEST dataset and of every TRAIN dataset
    to check, in spec order. Scoring a model on documents it was trained on inflates its F1 (a
    copy of the test file declared as TRAIN scores ~1.0 and would be promoted). A TRAIN dataset
    with ``allowTestOverlap: true`` is not checked. One error names every overlapping pair,
    located at the first offending TRAIN dataset's entry in the spec.
    """
    tests = [(dataset, keys) for dataset, keys in keyed if dataset.type is DatasetType.TEST]
    if not tests:
        return
    found: list[tuple[Dataset, Dataset, int]] = []
    for dataset, keys in keyed:
        if dataset.type is not DatasetType.TRAIN or dataset.allow_test_overlap:
            continue
        for test, test_keys in tests:
            shared = len(keys & test_keys)
            if shared:
                found.append((dataset, test, shared))
    if not found:
        return
    train, test, shared = found[0]
    message = (f"TRAIN dataset {train.name!r} ({train.path}) shares {_documents(shared)} with "
               f"TEST dataset {test.name!r} ({test.path})")
    if len(found) > 1:
        pairs = [f"{t.name!r} with {s.name!r}: {n}" for t, s, n in found[1:]]
        message += "; also " + listed(pairs, 5)
    message += (" (compared after Unicode NFKC, case and whitespace normalisation): a model "
                "scored on documents it was trained on looks better than it is; remove them "
                "from one side, or set allowTestOverlap: true on the TRAIN dataset to accept it")
    position = spec.datasets.index(train)
    if spec_path is None:
        raise DataError(message, file=train.path, flywheel=spec.name)
    raise DataError(message, file=spec_path, flywheel=spec.name,
                    line=lines_of("datasets", position) if lines_of else None,
                    field=f"datasets[{position}]")


def _documents(count: int) -> str:
    return f"{count} document{'s' if count != 1 else ''}"


def in_holdout(text: str, fraction: float) -> bool:
    """Whether a document falls in the holdout: a stable hash of its text, below ``fraction``."""
    bucket = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return bucket / 2**64 < fraction


def holdout_split(documents: list[Document], fraction: float) -> tuple[list[Document],
                                                                     list[Document]]:
    """Split by a stable hash of the text: a document always falls on the same side."""
    train: list[Document] = []
    test: list[Document] = []
    for document in documents:
        (test if in_holdout(document.text, fraction) else train).append(document)
    return train, test


def check_label_coverage(spec: FlywheelSpec, summary: CorpusSummary) -> None:
    """Every label needs enough training documents and at least one test document.

    Every label short of either is reported in one error (the first, with the others attached).
    """
    minimum = spec.task.min_documents_per_label
    train_counts, test_counts = summary.train_label_counts, summary.test_label_counts
    test_source = summary.test_source
    files = ", ".join(d.path for d in spec.train_datasets)
    problems = Problems()
    for label in spec.task.labels:
        if train_counts[label] < minimum:
            problems.add(DataError(
                f"label {label!r} has {train_counts[label]} training documents; "
                f"task.minDocumentsPerLabel is {minimum}",
                file=files, flywheel=spec.name,
            ))
        if not test_counts[label]:
            problems.add(DataError(
                f"label {label!r} has no document in the {test_source}; "
                "the test data must include every label",
                file=", ".join(d.path for d in spec.test_datasets) or files, flywheel=spec.name,
            ))
    problems.raise_if_any()
