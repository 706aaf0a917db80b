"""Stage 1: read and check every dataset, write the train and test documents.

The stage reads a private snapshot of each dataset, not the file itself: each file is copied
once (in blocks) while its MD5 is computed, and the documents are parsed from the copy. The
MD5 and the counts it writes to ``prepare.json`` are therefore those of exactly the bytes the
documents came from, even when the file is appended to while the stage runs; the reconciler
compares them with what it planned with (:class:`reconciler.runtime.iteration.IterationRun`),
and a file that changed fails the iteration, retryably.

Reading the datasets is the stage's work, and it is file work; :func:`summarize` is the part
that is not: what ``prepare.json`` holds, from the corpus and what was read (no file touched).

The stage also measures data drift (``drift.json``, :func:`measure_drift`): every declared
dataset the active model version was not trained on (by path and MD5), one at a time and the
TRAIN ones together, against that version's TRAIN datasets (``driftReference`` in the params),
streamed from the snapshots (a reference dataset no longer declared is read from the repository
when its MD5 still matches, and left out otherwise). No active model: ``null``.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler import limits
from reconciler.adapters.comprehend_csv import iter_dataset
from reconciler.adapters.corpus import load_corpus
from reconciler.adapters.dataset_files import file_md5, resolve_inside
from reconciler.adapters.files import atomic_write_json
from reconciler.core import drift
from reconciler.core.documents import Corpus
from reconciler.core.layout import snapshot_dir
from reconciler.core.spec import DatasetType, TaskConfig
from reconciler.errors import DataError
from reconciler.stages.params import StageParams, read_params, write_jsonl


def run(params_file: str, root: Path | None = None) -> None:
    """The stage: ``params_file`` relative to ``root`` (default: the working directory, where
    DVC runs it)."""
    params = read_params(params_file, root)
    ws = params.workspace
    snapshot = params.root / snapshot_dir(params.spec.name)
    shutil.rmtree(snapshot, ignore_errors=True)  # a killed run's leftovers
    try:
        read = {dataset.path: _snapshot(params.root, dataset.path, snapshot)
                for dataset in params.spec.datasets}
        corpus = load_corpus(params.spec, snapshot)
        drift = measure_drift(params, snapshot, read)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    write_jsonl(params.path(ws.train_data), corpus.train)
    write_jsonl(params.path(ws.test_data), corpus.test)
    atomic_write_json(params.path(ws.drift), drift)
    atomic_write_json(params.path(ws.prepare_summary), summarize(corpus, read))


def measure_drift(params: StageParams, snapshot: Path,
                  read: Mapping[str, tuple[str, int]]) -> dict[str, Any] | None:
    """What ``drift.json`` holds (see the module docstring); None without a reference."""
    reference_of = params.drift_reference
    if not reference_of:
        return None
    spec = params.spec
    reference = drift.reference_sample(lowercase=spec.recipe.features.lowercase)
    known: set[tuple[str, str]] = set()
    for ref in reference_of.get("datasets") or []:
        path, md5 = str(ref["path"]), str(ref["md5"])
        known.add((path, md5))
        source = _reference_file(params.root, snapshot, read, path, md5)
        if source is not None:
            _feed(reference, source, path, spec.task)
    if not reference.documents:
        return None
    datasets: dict[str, Any] = {}
    together = drift.new_sample(reference)
    for dataset in spec.datasets:
        md5 = read[dataset.path][0]
        if (dataset.path, md5) in known:
            continue
        sample = drift.new_sample(reference)
        is_train = dataset.type is DatasetType.TRAIN
        _feed(sample, snapshot / dataset.path, dataset.path, spec.task,
              together if is_train else None)
        datasets[dataset.name] = {**drift.measure(reference, sample), "md5": md5,
                                  "type": dataset.type.value}
    return {
        "reference": drift.describe_reference(reference, str(reference_of["version"])),
        "datasets": datasets,
        "newTrainData": drift.measure(reference, together) if together.documents else None,
    }


def _reference_file(root: Path, snapshot: Path, read: Mapping[str, tuple[str, int]],
                    path: str, md5: str) -> Path | None:
    """The bytes a reference dataset had: its snapshot, or the repository's file if unchanged."""
    if path in read:
        return snapshot / path if read[path][0] == md5 else None
    try:
        source = resolve_inside(root, path)
        return source if source.is_file() and file_md5(source) == md5 else None
    except (ValueError, OSError):
        return None


def _feed(sample: drift.Sample, path: Path, display: str, task: TaskConfig,
          also: drift.Sample | None = None) -> None:
    try:
        for document in iter_dataset(path, display, task):
            words = drift.tokens(document.text, lowercase=sample.lowercase)
            sample.add(document.labels, document.text, words)
            if also is not None:
                also.add(document.labels, document.text, words)
    except DataError:
        # Only a reference dataset can fail here (the declared ones were read above): one
        # no longer parsing under the current task (labels changed) counts as far as it read.
        pass


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
