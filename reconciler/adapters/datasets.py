"""The datasets adapter's public names, in one place for the modules that import them from here.

- :mod:`reconciler.adapters.dataset_files`: where a declared dataset resolves (inside ``data/``),
  its content hash, the hash cache (:func:`fingerprint`);
- :mod:`reconciler.adapters.comprehend_csv`: one Comprehend CSV file read a row at a time, with
  row-level errors (:func:`read_dataset`, :func:`iter_dataset`);
- :mod:`reconciler.adapters.corpus`: every dataset of a flywheel read once, checked and split
  (:func:`load_corpus`, :func:`check_corpus`);
- :mod:`reconciler.core.documents`: the pure corpus logic (holdout, overlap, label coverage).
"""

from __future__ import annotations

from reconciler.adapters.comprehend_csv import MAX_ROW_CHARS, iter_dataset, read_dataset
from reconciler.adapters.corpus import check_corpus, load_corpus
from reconciler.adapters.dataset_files import (
    MAX_DATASET_BYTES,
    DatasetFile,
    HashCache,
    file_md5,
    fingerprint,
    resolve_inside,
)
from reconciler.core.documents import (
    Corpus,
    CorpusSummary,
    Document,
    check_label_coverage,
    check_overlap,
    holdout_split,
    in_holdout,
    text_key,
)

__all__ = [
    "MAX_DATASET_BYTES",
    "MAX_ROW_CHARS",
    "Corpus",
    "CorpusSummary",
    "DatasetFile",
    "Document",
    "HashCache",
    "check_corpus",
    "check_label_coverage",
    "check_overlap",
    "file_md5",
    "fingerprint",
    "holdout_split",
    "in_holdout",
    "iter_dataset",
    "load_corpus",
    "read_dataset",
    "resolve_inside",
    "text_key",
]
