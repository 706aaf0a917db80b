"""Dataset files: Comprehend CSV reading with row-level errors, and content hashing.

A dataset file is Comprehend's classifier CSV: no header, one document per row, ``LABEL,text`` for
MULTI_CLASS and ``L1|L2,text`` for MULTI_LABEL (the delimiter is the task's ``labelDelimiter``).
Hashes are DVC-compatible MD5s of the file bytes, cached by file identity and stat so that the
no-change reconcile path reads no dataset bytes at all.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import json
import stat
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler import limits
from reconciler.adapters.files import atomic_write_text, read_json
from reconciler.core.documents import Document
from reconciler.core.layout import DATA_DIR, HASH_CACHE
from reconciler.core.spec import Dataset, DatasetType, FlywheelSpec, Mode, TaskConfig
from reconciler.core.state import TestSource
from reconciler.errors import (
    MAX_LISTED,
    DataError,
    FlywheelError,
    SpecError,
    TransientError,
    did_you_mean,
)

#: The defaults; FLYWHEEL_MAX_DATASET_BYTES and FLYWHEEL_MAX_ROW_CHARS change them (limits.py).
MAX_DATASET_BYTES = limits.DATASET_BYTES.default
MAX_ROW_CHARS = limits.ROW_CHARS.default
_CHUNK = 1 << 20


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
        try:  # bounded (size, depth; a link refused): a hostile cache is only re-hashing
            loaded = read_json(self.path, follow_symlinks=False)
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
    seen: dict[tuple[int, int], tuple[int, Dataset]] = {}  # (st_dev, st_ino) -> first dataset
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
        # One file under two names (a symlink, a hard link): a TRAIN "copy" of the TEST file
        # would be trained and scored on the same documents; allowTestOverlap does not cover it.
        first = seen.setdefault((info.st_dev, info.st_ino), (index, dataset))
        if first[0] != index:
            other = first[1]
            raise error(f"{dataset.path} is the same file as datasets[{first[0]}] "
                        f"{other.name!r} ({other.path}), through a symlink or a hard link: "
                        "declare a file once")
        try:
            md5, size = cache.md5(path)
        except OSError as exc:
            raise error(f"cannot read {dataset.path}: {exc.strerror}") from exc
        files.append(DatasetFile(dataset=dataset, md5=md5, size=size))
    return files


def read_dataset(path: Path, display: str, task: TaskConfig) -> list[Document]:
    """Parse one Comprehend CSV file into its documents (:func:`iter_dataset`, as a list)."""
    return list(iter_dataset(path, display, task))


def iter_dataset(path: Path, display: str, task: TaskConfig) -> Iterator[Document]:
    """The documents of one Comprehend CSV file, read a block at a time.

    Memory stays bounded by one row, whatever the file's size: a caller that only checks or
    counts (``flywheel validate``/``plan``) holds no document. Every bad row is found in one
    pass: the :class:`DataError` raised once the file is read names the first, with the others
    attached (``others``/``unlisted``, see reconciler/errors.py), each naming its line. A file
    that is not UTF-8 or holds a NUL byte is refused on its own (no row problem listed with it).
    Running out of memory is one line too (:func:`_out_of_memory`).
    """
    try:
        yield from _iter_rows(path, display, task)
    except MemoryError as exc:
        raise _out_of_memory(path, display) from exc


def _out_of_memory(path: Path, display: str) -> TransientError:
    try:
        size = f" ({_megabytes(path.stat().st_size)})"
    except OSError:
        size = ""
    return TransientError(f"out of memory reading {display}{size}: the process could not "
                          "allocate more memory (raise its memory limit or free memory, then "
                          "retry)")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 10**6 else f"{size} bytes"


class _Unreadable(Exception):
    """Raised by :func:`_lines` to end the reading: ``error`` is reported (``alone``: on its own,
    the rows' problems dropped, for a file that is not text at all)."""

    def __init__(self, error: DataError, *, alone: bool) -> None:
        super().__init__(str(error))
        self.error, self.alone = error, alone


def _lines(path: Path, display: str, max_line: int, position: list[int]) -> Iterator[str]:
    """The physical lines of a UTF-8 file (a leading BOM dropped), ends kept and split as the csv
    module splits them (``\\n``, ``\\r\\n``, ``\\r``); ``position[0]`` is the line number.

    No line longer than ``max_line`` characters is ever held: no row within the limits has one.
    """
    with path.open(encoding="utf-8-sig", errors="strict", newline="") as handle:
        try:
            while line := handle.readline(max_line):
                position[0] += 1
                if "\x00" in line:
                    raise _Unreadable(DataError("contains a NUL byte: this looks like a binary "
                                                "file", file=display, line=position[0]),
                                      alone=True)
                if len(line) >= max_line and not line.endswith(("\n", "\r")):
                    raise _Unreadable(DataError(
                        f"line is longer than {max_line} characters, longer than any row within "
                        f"the document limit ({limits.ROW_CHARS.hint}); the rows after it are "
                        "not read", file=display, line=position[0]), alone=False)
                yield line
        except UnicodeDecodeError as exc:
            raise _Unreadable(DataError("not valid UTF-8 (Comprehend CSV must be UTF-8)",
                                        file=display, line=_utf8_error_line(path)),
                              alone=True) from exc


def _utf8_error_line(path: Path) -> int:
    """The line of a file's first byte that is not UTF-8 (read again, a block at a time)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    newlines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:  # exc.object: at most 3 pending bytes + chunk
                return newlines + exc.object[: exc.start].count(b"\n") + 1
            newlines += chunk.count(b"\n")
    return newlines + 1  # a sequence cut short by the end of the file


def _bounded(reader: Iterator[list[str]], cell_limit: int) -> Iterator[list[str]]:
    """The rows of ``reader``, each parsed under the csv module's cell limit ``cell_limit``.

    That limit is process-wide: it is set only while a row is parsed and put back before the
    row is handed on, so no other reader of CSV in the process (a test, a caller) sees it.
    """
    while True:
        previous = csv.field_size_limit(cell_limit)
        try:
            row = next(reader, None)
        finally:
            csv.field_size_limit(previous)
        if row is None:
            return
        yield row


def _iter_rows(path: Path, display: str, task: TaskConfig) -> Iterator[Document]:
    declared = set(task.labels)
    problems = _Problems()
    max_chars = limits.ROW_CHARS.value()
    # One cell may be somewhat past the row limit and still be counted exactly ("document has N
    # characters"); the csv module's own limit refuses a longer one (:func:`_bounded`).
    labels_chars = sum(len(label) + len(task.label_delimiter) for label in task.labels)
    cell_limit = 2 * max_chars + labels_chars + 64
    position = [0]
    reader = csv.reader(_lines(path, display, 4 * cell_limit + 8, position), strict=True)
    label_sets: dict[str, frozenset[str]] = {}  # one frozenset per distinct label cell
    line = 1
    first = True
    count = 0
    try:
        for row in _bounded(reader, cell_limit):
            start, line = line, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            try:
                document = _document(row, start, display, task, declared, max_chars,
                                     explain=problems.listing, label_sets=label_sets)
            except DataError as exc:
                problem = exc
                if first and _looks_like_header(row):
                    problem = DataError("looks like a header row: Comprehend CSV has no header; "
                                        "remove it", file=display, line=start)
                problems.add(problem)
            else:
                count += 1
                yield document
            first = False
    except _Unreadable as exc:
        if exc.alone:
            raise exc.error from None
        problems.add(exc.error)
    except csv.Error as exc:
        if str(exc).startswith("field larger than field limit"):
            problems.add(DataError(
                f"a cell of the row starting here has more than {cell_limit} characters; a "
                f"document's limit is {max_chars} ({limits.ROW_CHARS.hint}); the rows after "
                "it are not read", file=display, line=line))
        else:
            problems.add(DataError(f"malformed CSV in the row starting here: {exc} (the rows "
                                   "after it are not read)", file=display, line=line))
    problems.raise_if_any()
    if not count:
        raise DataError("the dataset has no documents", file=display)


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
              declared: set[str], max_chars: int, *, explain: bool = True,
              label_sets: dict[str, frozenset[str]] | None = None) -> Document:
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
    labels = label_sets.get(label_cell) if label_sets is not None else None
    if labels is None:
        labels = _labels(label_cell, task, declared, explain, fail)
        if label_sets is not None and len(label_sets) < _LABEL_SETS:
            label_sets[label_cell] = labels
    return Document(labels=labels, text=text, line=line)


#: At most this many distinct label cells of one file share their frozenset (a MULTI_LABEL file
#: can combine labels in many ways; past this, each document has its own).
_LABEL_SETS = 4096


def _labels(label_cell: str, task: TaskConfig, declared: set[str], explain: bool,
            fail: Callable[[str], DataError]) -> frozenset[str]:
    if task.mode is Mode.MULTI_LABEL:
        parts = label_cell.split(task.label_delimiter)
    else:
        parts = [label_cell]
    for part in parts:
        if part in declared:
            continue
        if not part.strip():
            raise fail(f"empty label in {_shown(label_cell)}")
        if part != part.strip():  # the spec refuses such a label: a row does too
            stripped = part.strip()
            hint = f"; did you mean {stripped!r}?" if stripped in declared else \
                (did_you_mean(stripped, task.labels) if explain else "")
            raise fail(f"label {_shown(part)} has leading or trailing spaces{hint}")
        if not explain:  # not listed: a suggestion would cost a comparison per label
            raise fail(f"unknown label {_shown(part)}")
        raise fail(f"unknown label {_shown(part)}{did_you_mean(part, task.labels)} "
                   f"(declared: {_listed(sorted(declared))})")
    if len(set(parts)) != len(parts):
        raise fail(f"label repeated in {_shown(label_cell)}")
    return frozenset(parts)


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
    test_source: TestSource


@dataclass(frozen=True)
class CorpusSummary:
    """What :func:`check_corpus` found: the counts of a corpus, none of its documents."""

    number_of_train_documents: int
    number_of_test_documents: int
    train_label_counts: Counter[str]
    test_label_counts: Counter[str]
    test_source: TestSource


def load_corpus(spec: FlywheelSpec, root: Path, *, spec_path: str | None = None,
                lines_of: Callable[..., int | None] | None = None) -> Corpus:
    """Read every declared dataset and build the train/test split the iteration uses.

    Training uses every TRAIN dataset (the data accumulates). Testing uses every TEST dataset, or,
    when none is declared, a deterministic holdout of the training data chosen by hashing each
    document's text, so the holdout is stable across iterations as data grows. A TRAIN dataset
    sharing documents with a TEST dataset is refused (:func:`check_overlap`); ``spec_path`` and
    ``lines_of`` (as for :func:`fingerprint`) let that error name the spec line.
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


def _scan(spec: FlywheelSpec, root: Path, spec_path: str | None,
          lines_of: Callable[..., int | None] | None, train: list[Document] | None,
          test: list[Document] | None) -> CorpusSummary:
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
            raise _out_of_memory(root / dataset.path, dataset.path) from exc
    check_overlap(spec, keyed, spec_path, lines_of)
    source = TestSource.TEST_DATASETS if has_test else TestSource.HOLDOUT
    summary = CorpusSummary(
        number_of_train_documents=sum(train_sets.values()),
        number_of_test_documents=sum(test_sets.values()),
        train_label_counts=_label_counts(train_sets), test_label_counts=_label_counts(test_sets),
        test_source=source)
    check_label_coverage(spec, summary)
    return summary


def _label_counts(sets: Counter[frozenset[str]]) -> Counter[str]:
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


def in_holdout(text: str, fraction: float) -> bool:
    """Whether a document falls in the holdout: a stable hash of its text, below ``fraction``."""
    bucket = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return bucket / 2**64 < fraction


def holdout_split(documents: list[Document], fraction: float) -> tuple[list[Document],
                                                                     list[Document]]:
    """Split by a stable hash of the text: a document always falls on the same side."""
    train, test = [], []
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
