"""Stage 1: read and check every dataset, write the train and test documents.

The stage reads a private snapshot of each dataset, not the file itself: each file is copied
once (in blocks) while its MD5 is computed, and the documents are parsed from the copy. The
MD5 and the counts it writes to ``prepare.json`` are therefore those of exactly the bytes the
documents came from, even when the file is appended to while the stage runs; the reconciler
compares them with what it planned with (:class:`reconciler.runtime.iteration.IterationRun`),
and a file that changed fails the iteration, retryably.

Reading the datasets is the stage's work, and it is file work; :func:`summarize` is the part
that is not: what ``prepare.json`` holds, from the corpus and what was read (no file touched).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler import limits
from reconciler.adapters.corpus import load_corpus
from reconciler.adapters.dataset_files import resolve_inside
from reconciler.adapters.files import atomic_write_json
from reconciler.core.documents import Corpus
from reconciler.core.layout import snapshot_dir
from reconciler.errors import DataError
from reconciler.stages.params import read_params, write_jsonl


def run(params_file: str) -> None:
    params = read_params(params_file)
    ws = params.workspace
    snapshot = params.root / snapshot_dir(params.spec.name)
    shutil.rmtree(snapshot, ignore_errors=True)  # a killed run's leftovers
    try:
        read = {dataset.path: _snapshot(params.root, dataset.path, snapshot)
                for dataset in params.spec.datasets}
        corpus = load_corpus(params.spec, snapshot)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    write_jsonl(params.path(ws.train_data), corpus.train)
    write_jsonl(params.path(ws.test_data), corpus.test)
    atomic_write_json(params.path(ws.prepare_summary), summarize(corpus, read))


def summarize(corpus: Corpus, datasets: Mapping[str, tuple[str, int]]) -> dict[str, Any]:
    """What ``prepare.json`` holds: the corpus's counts and test source, and each dataset read
    (its path, in spec order, to the MD5 and size of the bytes its documents came from)."""
    return {
        "numberOfTrainDocuments": len(corpus.train),
        "numberOfTestDocuments": len(corpus.test),
        "testSource": corpus.test_source,
        "datasets": [{"path": path, "md5": md5, "size": size}
                     for path, (md5, size) in datasets.items()],
    }


def _snapshot(root: Path, relative: str, snapshot: Path) -> tuple[str, int]:
    """Copy ``root/relative`` to ``snapshot/relative``; the MD5 and size of what was copied."""
    try:
        source = resolve_inside(root, relative)
    except ValueError as exc:
        raise DataError(str(exc), file=relative) from exc
    target = snapshot / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5(usedforsecurity=False)
    size, limit = 0, limits.DATASET_BYTES.value()
    try:
        with source.open("rb") as origin, target.open("wb") as copy:
            while chunk := origin.read(1 << 20):
                digest.update(chunk)
                copy.write(chunk)
                size += len(chunk)
                if size > limit:  # grown past the limit since it was checked
                    raise DataError(f"is more than {limit} bytes ({limits.DATASET_BYTES.hint})",
                                    file=relative)
    except FileNotFoundError as exc:
        raise DataError("dataset file not found", file=relative) from exc
    return digest.hexdigest(), size
