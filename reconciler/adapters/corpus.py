"""A flywheel's corpus: every declared dataset read once, checked, split into train and test.

The reading is :mod:`reconciler.adapters.comprehend_csv`'s; the holdout, the overlap check and
the label coverage are pure (:mod:`reconciler.core.documents`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from reconciler.adapters.comprehend_csv import iter_dataset, out_of_memory
from reconciler.adapters.dataset_files import resolve_inside
from reconciler.core.documents import (
    Corpus,
    CorpusSummary,
    Document,
    check_label_coverage,
    check_overlap,
    in_holdout,
    label_counts,
    text_key,
)
from reconciler.core.spec import Dataset, DatasetType, FlywheelSpec
from reconciler.core.state import TestSource
from reconciler.errors import DataError, FlywheelError


def load_corpus(spec: FlywheelSpec, root: Path, *, spec_path: str | None = None,
                lines_of: Callable[..., int | None] | None = None) -> Corpus:
    """Read every declared dataset and build the train/test split the iteration uses.

    Training uses every TRAIN dataset (the data accumulates). Testing uses every TEST dataset, or,
    when none is declared, a deterministic holdout of the training data chosen by hashing each
    document's text, so the holdout is stable across iterations as data grows. A TRAIN dataset
    sharing documents with a TEST dataset is refused (:func:`check_overlap`); ``spec_path`` and
    ``lines_of`` (as for :func:`~reconciler.adapters.dataset_files.fingerprint`) let that error name
    the spec line.
    """
    train: list[Document] = []
    test: list[Document] = []
    summary = _scan(spec, root, spec_path, lines_of, train, test)
    return Corpus(train=train, test=test, test_source=summary.test_source)


def check_corpus(spec: FlywheelSpec, root: Path, *, spec_path: str | None = None,
                 lines_of: Callable[..., int | None] | None = None) -> CorpusSummary:
    """Every check of :func:`load_corpus` (rows, train/test overlap, label coverage), streaming:
    no document is held, only counts per label and a 16-byte digest per document of the
    datasets the overlap check compares (``flywheel validate`` and ``plan``)."""
    return _scan(spec, root, spec_path, lines_of, None, None)


def check_rows_and_overlap(spec: FlywheelSpec, root: Path, *, spec_path: str | None = None,
                           lines_of: Callable[..., int | None] | None = None) -> CorpusSummary:
    """:func:`check_corpus` without the label coverage: what a dataset being declared must
    pass. Coverage is the whole corpus's matter: a small first dataset is accepted, and the
    plan says what the flywheel still lacks, until more datasets make up for it."""
    return _scan(spec, root, spec_path, lines_of, None, None, coverage=False)


def _scan(spec: FlywheelSpec, root: Path, spec_path: str | None,
          lines_of: Callable[..., int | None] | None, train: list[Document] | None,
          test: list[Document] | None, *, coverage: bool = True) -> CorpusSummary:
    """Read every dataset once, in spec order; keep the documents only in lists given."""
    task = spec.task
    fraction = spec.recipe.holdout_fraction
    has_test = any(dataset.type is DatasetType.TEST for dataset in spec.datasets)
    keyed: list[tuple[Dataset, set[bytes]]] = []
    train_sets: Counter[frozenset[str]] = Counter()  # documents per label set
    test_sets: Counter[frozenset[str]] = Counter()
    for dataset in spec.datasets:
        is_test = dataset.type is DatasetType.TEST
        keys: set[bytes] | None = None
        if has_test and (is_test or not dataset.allow_test_overlap):
            keys = set()
            keyed.append((dataset, keys))
        try:
            path = resolve_inside(root, dataset.path)
            for document in iter_dataset(path, dataset.path, task):
                if keys is not None:
                    keys.add(text_key(document.text))
                to_test = is_test or (not has_test and in_holdout(document.text, fraction))
                (test_sets if to_test else train_sets)[document.labels] += 1
                side = test if to_test else train
                if side is not None:
                    side.append(document)
        except FlywheelError as exc:
            exc.flywheel = exc.flywheel or spec.name
            raise
        except ValueError as exc:
            raise DataError(str(exc), file=dataset.path, flywheel=spec.name) from exc
        except OSError as exc:
            raise DataError(f"cannot read: {exc.strerror}", file=dataset.path,
                            flywheel=spec.name) from exc
        except MemoryError as exc:  # the sets and lists held across files
            raise out_of_memory(root / dataset.path, dataset.path) from exc
    check_overlap(spec, keyed, spec_path, lines_of)
    source = TestSource.TEST_DATASETS if has_test else TestSource.HOLDOUT
    summary = CorpusSummary(
        number_of_train_documents=sum(train_sets.values()),
        number_of_test_documents=sum(test_sets.values()),
        train_label_counts=label_counts(train_sets), test_label_counts=label_counts(test_sets),
        test_source=source)
    if coverage:
        check_label_coverage(spec, summary)
    return summary
