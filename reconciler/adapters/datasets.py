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
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler import limits
from reconciler.adapters.files import atomic_write_text
from reconciler.core.spec import DATA_DIR, Dataset, DatasetType, FlywheelSpec, Mode, TaskConfig
from reconciler.errors import MAX_LISTED, DataError, FlywheelError, SpecError, did_you_mean

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
    """Parse one Comprehend CSV file.

    Every bad row is found in one pass: the :class:`DataError` raised names the first, with the
    others attached (``others``/``unlisted``, see reconciler/errors.py), each naming its line.
    """
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
    problems = _Problems()
    # The csv module's own cell limit (131,072 by default) would refuse long documents with a
    # "malformed CSV" message before the row limit could name the real problem. No cell can be
    # longer than the text, which is in memory already: a limit past both never refuses first.
    max_chars = limits.ROW_CHARS.value()
    if csv.field_size_limit() <= max(max_chars, len(text)):
        csv.field_size_limit(max(max_chars, len(text)) + 1)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    first = True
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            try:
                documents.append(_document(row, start, display, task, declared, max_chars,
                                           explain=problems.listing))
            except DataError as exc:
                problem = exc
                if first and _looks_like_header(row):
                    problem = DataError("looks like a header row: Comprehend CSV has no header; "
                                        "remove it", file=display, line=start)
                problems.add(problem)
            first = False
    except csv.Error as exc:
        problems.add(DataError(f"malformed CSV in the row starting here: {exc} (the rows after "
                               "it are not read)", file=display, line=line))
    problems.raise_if_any()
    if not documents:
        raise DataError("the dataset has no documents", file=display)
    return documents


class _Problems:
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


#: First cells of a header row (compared casefolded): a data file's first row like these is a
#: header, which Comprehend CSV does not have.
_HEADER_WORDS = frozenset({"label", "labels", "class", "classes", "category", "categories",
                           "tag", "tags", "target", "text", "texts", "document", "documents",
                           "doc", "sentence", "content", "body", "description"})


def _looks_like_header(row: list[str]) -> bool:
    return any(cell.strip().casefold() in _HEADER_WORDS for cell in row[:2])


def _document(row: list[str], line: int, file: str, task: TaskConfig,
              declared: set[str], max_chars: int, *, explain: bool = True) -> Document:
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
            if not explain:  # not listed: a suggestion would cost a comparison per label
                raise fail(f"unknown label {_shown(part)}")
            raise fail(f"unknown label {_shown(part)}{did_you_mean(part, task.labels)} "
                       f"(declared: {_listed(sorted(declared))})")
    if len(set(parts)) != len(parts):
        raise fail(f"label repeated in {_shown(label_cell)}")
    return Document(labels=frozenset(parts), text=text, line=line)


def _listed(items: list[str], limit: int = 12) -> str:
    """``a, b, c … and N more``: a list is never cut silently (long items are shortened)."""
    shown = ", ".join(item if len(item) <= 40 else item[:39] + "…" for item in items[:limit])
    return shown + (f" … and {len(items) - limit} more" if len(items) > limit else "")


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


def load_corpus(spec: FlywheelSpec, root: Path, *, spec_path: str | None = None,
                lines_of: Callable[..., int | None] | None = None) -> Corpus:
    """Read every declared dataset and build the train/test split the iteration uses.

    Training uses every TRAIN dataset (the data accumulates). Testing uses every TEST dataset, or,
    when none is declared, a deterministic holdout of the training data chosen by hashing each
    document's text, so the holdout is stable across iterations as data grows. A TRAIN dataset
    sharing documents with a TEST dataset is refused (:func:`check_overlap`); ``spec_path`` and
    ``lines_of`` (as for :func:`fingerprint`) let that error name the spec line.
    """
    task = spec.task
    read: list[tuple[Dataset, list[Document]]] = []
    for dataset in spec.datasets:
        try:
            path = resolve_inside(root, dataset.path)
            documents = read_dataset(path, dataset.path, task)
        except ValueError as exc:
            raise DataError(str(exc), file=dataset.path, flywheel=spec.name) from exc
        except OSError as exc:
            raise DataError(f"cannot read: {exc.strerror}", file=dataset.path,
                            flywheel=spec.name) from exc
        read.append((dataset, documents))
    check_overlap(spec, read, spec_path, lines_of)
    train = [doc for dataset, docs in read if dataset.type is DatasetType.TRAIN for doc in docs]
    test = [doc for dataset, docs in read if dataset.type is DatasetType.TEST for doc in docs]
    source = "TEST datasets"
    if not test:
        train, test = holdout_split(train, spec.recipe.holdout_fraction)
        source = "holdout"
    check_label_coverage(spec, train, test, source)
    return Corpus(train=train, test=test, test_source=source)


def text_key(text: str) -> bytes:
    """A document's identity for the overlap check: a hash of its text after Unicode NFKC,
    case folding and whitespace collapsing, so a copy that differs only in those still counts."""
    if text.isascii():  # the common case, 4x quicker: NFKC leaves ASCII alone
        folded = text.lower()
    else:
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return hashlib.blake2b(" ".join(folded.split()).encode(), digest_size=16).digest()


def check_overlap(spec: FlywheelSpec, read: list[tuple[Dataset, list[Document]]],
                  spec_path: str | None = None,
                  lines_of: Callable[..., int | None] | None = None) -> None:
    """Refuse TRAIN documents that are also TEST documents (by :func:`text_key`).

    Scoring a model on documents it was trained on inflates its F1 (a copy of the test file
    declared as TRAIN scores ~1.0 and would be promoted). A TRAIN dataset with
    ``allowTestOverlap: true`` is not checked. One error names every overlapping pair, located
    at the first offending TRAIN dataset's entry in the spec.
    """
    tests = [(dataset, {text_key(d.text) for d in docs}) for dataset, docs in read
             if dataset.type is DatasetType.TEST]
    if not tests:
        return
    found: list[tuple[int, Dataset, Dataset, int]] = []
    for index, (dataset, docs) in enumerate(read):
        if dataset.type is not DatasetType.TRAIN or dataset.allow_test_overlap:
            continue
        keys = {text_key(d.text) for d in docs}
        for test, test_keys in tests:
            shared = len(keys & test_keys)
            if shared:
                found.append((index, dataset, test, shared))
    if not found:
        return
    index, train, test, shared = found[0]
    message = (f"TRAIN dataset {train.name!r} ({train.path}) shares {_documents(shared)} with "
               f"TEST dataset {test.name!r} ({test.path})")
    if len(found) > 1:
        pairs = [f"{t.name!r} with {s.name!r}: {n}" for _, t, s, n in found[1:]]
        message += "; also " + _listed(pairs, 5)
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
    """Every label needs enough training documents and at least one test document.

    Every label short of either is reported in one error (the first, with the others attached).
    """
    minimum = spec.task.min_documents_per_label
    train_counts = Counter(label for doc in train for label in doc.labels)
    test_counts = Counter(label for doc in test for label in doc.labels)
    files = ", ".join(d.path for d in spec.train_datasets)
    problems = _Problems()
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
