"""Dataset files: Comprehend CSV reading with row-level errors, and content hashing.

A dataset file is Comprehend's classifier CSV: no header, one document per row, ``LABEL,text`` for
MULTI_CLASS and ``L1|L2,text`` for MULTI_LABEL (the delimiter is the task's ``labelDelimiter``).
Hashes are DVC-compatible MD5s of the file bytes, cached by file identity and stat so that the
no-change reconcile path reads no dataset bytes at all.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler import limits
from reconciler.adapters.files import atomic_write_text
from reconciler.core.spec import DATA_DIR, Dataset, DatasetType, FlywheelSpec, Mode, TaskConfig
from reconciler.errors import DataError, SpecError

#: The defaults; FLYWHEEL_MAX_DATASET_BYTES and FLYWHEEL_MAX_ROW_CHARS change them (limits.py).
MAX_DATASET_BYTES = limits.DATASET_BYTES.default
MAX_ROW_CHARS = limits.ROW_CHARS.default
HASH_CACHE = ".flywheel/cache/hashes.json"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Document:
    labels: frozenset[str]
    text: str
    line: int


@dataclass(frozen=True, slots=True)
class DatasetFile:
    """A declared dataset resolved on disk, with its content hash."""

    dataset: Dataset
    md5: str
    size: int


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative`` with symlinks resolved; ValueError unless it stays inside ``data/``."""
    try:
        real_root = root.resolve()
        data_dir = (root / DATA_DIR).resolve()
        target = (root / relative).resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise ValueError(f"{relative!r} cannot be resolved: {exc}") from exc
    if not (target.is_relative_to(real_root) and target.is_relative_to(data_dir)):
        raise ValueError(f"{relative!r} resolves outside the repository's {DATA_DIR}/ folder "
                         f"(to {target})")
    return target


class HashCache:
    """MD5 of files keyed by (path, size, mtime_ns, inode, ctime_ns), persisted as JSON.

    The cache is a local speed-up under ``.flywheel/`` (not committed); a corrupt or missing cache
    file is silently rebuilt.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / HASH_CACHE
        self.entries: dict[str, list[object]] = {}
        self.dirty = False
        try:
            loaded = json.loads(self.path.read_text("utf-8"))
            if isinstance(loaded, dict):
                self.entries = loaded
        except (OSError, ValueError):
            pass

    def md5(self, path: Path) -> tuple[str, int]:
        stat = path.stat()
        key = str(path)
        identity = [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]
        cached = self.entries.get(key)
        if isinstance(cached, list) and cached[:4] == identity and len(cached) == 5:
            return str(cached[4]), stat.st_size
        digest = file_md5(path)
        self.entries[key] = [*identity, digest]
        self.dirty = True
        return digest, stat.st_size

    def save(self) -> None:
        """Write the cache back; a failed write (a full disk) only costs re-hashing later."""
        if self.dirty:
            with contextlib.suppress(OSError):
                atomic_write_text(self.path, json.dumps(self.entries, sort_keys=True))
            self.dirty = False


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(spec: FlywheelSpec, spec_path: str, lines_of: Callable[..., int | None],
                root: Path, cache: HashCache) -> list[DatasetFile]:
    """Resolve and hash every declared dataset; errors name the spec line of the dataset path.

    ``lines_of(*loc)`` maps a spec location to its line number.
    """
    files = []
    max_bytes = limits.DATASET_BYTES.value()
    for index, dataset in enumerate(spec.datasets):
        def error(message: str, index: int = index) -> SpecError:
            return SpecError(message, file=spec_path, line=lines_of("datasets", index, "path"),
                             field=f"datasets[{index}].path", flywheel=spec.name)
        try:
            path = resolve_inside(root, dataset.path)
        except ValueError as exc:
            raise error(str(exc)) from exc
        try:
            info = path.stat()
        except OSError:
            raise error(f"dataset file not found: {dataset.path}") from None
        if stat.S_ISDIR(info.st_mode):
            raise error(f"dataset file not found: {dataset.path} is a directory")
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise error(f"{dataset.path} is not a regular file")
        if info.st_size > max_bytes:  # checked before hashing: do not read what is refused
            raise error(f"{dataset.path} is {info.st_size} bytes; the limit is {max_bytes} "
                        f"({limits.DATASET_BYTES.hint})")
        try:
            md5, size = cache.md5(path)
        except OSError as exc:
            raise error(f"cannot read {dataset.path}: {exc.strerror}") from exc
        files.append(DatasetFile(dataset=dataset, md5=md5, size=size))
    return files


def read_dataset(path: Path, display: str, task: TaskConfig) -> list[Document]:
    """Parse one Comprehend CSV file; every bad row raises :class:`DataError` naming it."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError("not valid UTF-8 (Comprehend CSV must be UTF-8)", file=display,
                        line=line) from exc
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError("contains a NUL byte: this looks like a binary file", file=display,
                        line=line)
    declared = set(task.labels)
    documents: list[Document] = []
    # The csv module's own cell limit (131,072 by default) would refuse long documents with a
    # "malformed CSV" message before the row limit could name the real problem. No cell can be
    # longer than the text, which is in memory already: a limit past both never refuses first.
    max_chars = limits.ROW_CHARS.value()
    if csv.field_size_limit() <= max(max_chars, len(text)):
        csv.field_size_limit(max(max_chars, len(text)) + 1)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            documents.append(_document(row, start, display, task, declared, max_chars))
    except csv.Error as exc:
        raise DataError(f"malformed CSV in the row starting here: {exc}", file=display,
                        line=line) from exc
    if not documents:
        raise DataError("the dataset has no documents", file=display)
    return documents


def _document(row: list[str], line: int, file: str, task: TaskConfig,
              declared: set[str], max_chars: int) -> Document:
    def fail(message: str) -> DataError:
        return DataError(message, file=file, line=line)

    if len(row) != 2:
        hint = "; quote the text if it contains commas" if len(row) > 2 else ""
        raise fail(f"expected 2 columns (label,text), found {len(row)}{hint}")
    label_cell, text = row
    if len(text) > max_chars:
        raise fail(f"document has {len(text)} characters; the limit is {max_chars} "
                   f"({limits.ROW_CHARS.hint})")
    if not label_cell.strip():
        raise fail("row has no label")
    if not text.strip():
        raise fail("document text is empty")
    if task.mode is Mode.MULTI_LABEL:
        parts = [part.strip() for part in label_cell.split(task.label_delimiter)]
    else:
        parts = [label_cell.strip()]
    for part in parts:
        if part not in declared:
            if not part:
                raise fail(f"empty label in {_shown(label_cell)}")
            shown = ", ".join(sorted(declared)[:12])
            raise fail(f"unknown label {_shown(part)} (declared: {shown})")
    if len(set(parts)) != len(parts):
        raise fail(f"label repeated in {_shown(label_cell)}")
    return Document(labels=frozenset(parts), text=text, line=line)


def _shown(value: str, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a cell can be a megabyte long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Corpus:
    """The documents of one iteration: training pool and test data, ready to fit and score."""

    train: list[Document]
    test: list[Document]
    test_source: str  # "TEST datasets" or "holdout"


def load_corpus(spec: FlywheelSpec, root: Path) -> Corpus:
    """Read every declared dataset and build the train/test split the iteration uses.

    Training uses every TRAIN dataset (the data accumulates). Testing uses every TEST dataset, or,
    when none is declared, a deterministic holdout of the training data chosen by hashing each
    document's text, so the holdout is stable across iterations as data grows.
    """
    task = spec.task
    by_type: dict[DatasetType, list[Document]] = {DatasetType.TRAIN: [], DatasetType.TEST: []}
    for dataset in spec.datasets:
        try:
            path = resolve_inside(root, dataset.path)
            documents = read_dataset(path, dataset.path, task)
        except ValueError as exc:
            raise DataError(str(exc), file=dataset.path, flywheel=spec.name) from exc
        except OSError as exc:
            raise DataError(f"cannot read: {exc.strerror}", file=dataset.path,
                            flywheel=spec.name) from exc
        by_type[dataset.type].extend(documents)
    train, test = by_type[DatasetType.TRAIN], by_type[DatasetType.TEST]
    source = "TEST datasets"
    if not test:
        train, test = holdout_split(train, spec.recipe.holdout_fraction)
        source = "holdout"
    check_label_coverage(spec, train, test, source)
    return Corpus(train=train, test=test, test_source=source)


def holdout_split(documents: list[Document], fraction: float) -> tuple[list[Document],
                                                                     list[Document]]:
    """Split by a stable hash of the text: a document always falls on the same side."""
    train, test = [], []
    for document in documents:
        bucket = int.from_bytes(hashlib.sha256(document.text.encode()).digest()[:8], "big")
        (test if bucket / 2**64 < fraction else train).append(document)
    return train, test


def check_label_coverage(spec: FlywheelSpec, train: list[Document], test: list[Document],
                         test_source: str) -> None:
    """Every label needs enough training documents and at least one test document."""
    minimum = spec.task.min_documents_per_label
    train_counts = Counter(label for doc in train for label in doc.labels)
    test_counts = Counter(label for doc in test for label in doc.labels)
    files = ", ".join(d.path for d in spec.train_datasets)
    for label in spec.task.labels:
        if train_counts[label] < minimum:
            raise DataError(
                f"label {label!r} has {train_counts[label]} training documents; "
                f"task.minDocumentsPerLabel is {minimum}",
                file=files, flywheel=spec.name,
            )
        if not test_counts[label]:
            raise DataError(
                f"label {label!r} has no document in the {test_source}; "
                "the test data must include every label",
                file=", ".join(d.path for d in spec.test_datasets) or files, flywheel=spec.name,
            )

