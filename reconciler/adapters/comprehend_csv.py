"""Comprehend CSV files: the documents of one file, read a row at a time, every bad row named.

A dataset file is Comprehend's classifier CSV: no header, one document per row, ``LABEL,text`` for
MULTI_CLASS and ``L1|L2,text`` for MULTI_LABEL (the delimiter is the task's ``labelDelimiter``).

The csv module's cell limit (``csv.field_size_limit``) is process-wide. This module does not
change it per read: it bounds every cell itself before the csv module holds it
(:class:`_CellMeter`), and only makes sure the csv module's own limit is no lower than that bound
(:func:`allow_cells_of`: raised once for the default limits, under a lock, never lowered). A
reader in another thread never sees the limit change under it.
"""

from __future__ import annotations

import csv
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from reconciler import limits
from reconciler.adapters.files import utf8_error_line
from reconciler.core.documents import Document, Problems, listed
from reconciler.core.spec import Mode, TaskConfig
from reconciler.errors import DataError, TransientError, did_you_mean

_CHUNK = 1 << 20


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
    Running out of memory is one line too (:func:`out_of_memory`).
    """
    try:
        yield from _iter_rows(path, display, task)
    except MemoryError as exc:
        raise out_of_memory(path, display) from exc


def out_of_memory(path: Path, display: str) -> TransientError:
    """The one-line error for running out of memory while reading ``display``."""
    try:
        size = f" ({_megabytes(path.stat().st_size)})"
    except OSError:
        size = ""
    return TransientError(f"out of memory reading {display}{size}: the process could not "
                          "allocate more memory (raise its memory limit or free memory, then "
                          "retry)")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 10**6 else f"{size} bytes"


_CSV_LIMIT = threading.Lock()


def allow_cells_of(chars: int) -> None:
    """Make sure the csv module's process-wide cell limit is at least ``chars``.

    It is raised when a read needs more (once for the default limits), never lowered: cells are
    bounded by :class:`_CellMeter`, so the csv module's limit only has to stay out of the way.
    """
    with _CSV_LIMIT:
        if csv.field_size_limit() < chars:
            csv.field_size_limit(chars)


class _Unreadable(Exception):
    """Raised by :func:`_lines` to end the reading: ``error`` is reported (``alone``: on its own,
    the rows' problems dropped, for a file that is not text at all)."""

    def __init__(self, error: DataError, *, alone: bool) -> None:
        super().__init__(str(error))
        self.error, self.alone = error, alone


class _CellTooLong(Exception):
    """Raised by :func:`_lines`: a cell of the row being read is longer than the cell limit."""


#: Inside a quoted cell: anything up to a lone quote (``""`` is an escaped quote).
_QUOTED_RUN = re.compile(r'[^"]*(?:""[^"]*)*')
#: An unquoted cell: up to a comma or the line's end.
_UNQUOTED_RUN = re.compile(r"[^,\r\n]*")
#: A line this long or shorter is kept by reference until its row is read, not followed.
_HELD = 1 << 16


class _CellMeter:
    """Knows that no cell of the row being read is longer than ``limit``, before the csv module
    holds the line that would make it so (:meth:`fits`, one physical line at a time;
    :meth:`row_read` once the csv module has read a whole row).

    While a row's lines are short (:data:`_HELD`) and add up to ``limit`` characters or fewer,
    none of its cells can be longer: they are only kept (a reference each). Past that, the row is
    followed as the csv module reads it (the default dialect, strict): a quoted cell's quotes are
    not counted, an escaped quote ``""`` counts one, and the line ends inside a quoted cell
    count. Once a line holds something the csv module refuses (``"x"y``), following stops: its
    own error ends the reading there. Nothing is copied: a long line costs no memory here.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held: list[str] = []  # the row's lines so far, while none is followed
        self.held_chars = 0
        self.following = False
        self.quoted = False  # the next line starts inside a quoted cell (else at a cell's start)
        self.length = 0  # that cell's characters so far
        self.lost = False

    def row_read(self) -> None:
        """The csv module has read a whole row: the next line starts another."""
        self.held.clear()
        self.held_chars, self.following, self.quoted, self.length = 0, False, False, 0

    def fits(self, line: str) -> bool:
        """Whether every cell stays within the limit with ``line`` (its end kept) read too."""
        if not self.following:
            chars = self.held_chars + len(line)
            if len(line) <= _HELD and chars <= self.limit:
                self.held.append(line)
                self.held_chars = chars
                return True
            self.following = True
            for earlier in self.held:  # its cells are short: followed for where they end
                self._follow(earlier)
            self.held.clear()
        return self._follow(line)

    def _follow(self, line: str) -> bool:
        limit = self.limit
        if self.lost:
            return True
        pos, end, length, quoted = 0, len(line), self.length, self.quoted
        while True:
            if quoted:
                stop = _QUOTED_RUN.match(line, pos).end()  # type: ignore[union-attr]
                length += stop - pos - line.count('"', pos, stop) // 2
                if length > limit:
                    return False
                if stop == end:  # the cell goes on on the next line
                    self.quoted, self.length = True, length
                    return True
                pos, quoted = stop + 1, False  # past the closing quote
                if pos == end or line[pos] in "\r\n":
                    break
                if line[pos] != ",":  # the csv module refuses the row ("',' expected")
                    self.lost = True
                    return True
                pos += 1
            if pos < end and line[pos] == '"':
                pos, quoted, length = pos + 1, True, 0
                continue
            stop = _UNQUOTED_RUN.match(line, pos).end()  # type: ignore[union-attr]
            if stop - pos > limit:
                return False
            if stop < end and line[stop] == ",":
                pos = stop + 1
                continue
            break
        self.quoted, self.length = False, 0
        return True


def _lines(path: Path, display: str, max_line: int, position: list[int],
           meter: _CellMeter) -> Iterator[str]:
    """The physical lines of a UTF-8 file (a leading BOM dropped), ends kept and split as the csv
    module splits them (``\\n``, ``\\r\\n``, ``\\r``); ``position[0]`` is the line number.

    No line longer than ``max_line`` characters is ever held: no row within the limits has one;
    no line making a cell longer than ``meter``'s limit is handed on (:class:`_CellTooLong`).
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
                if not meter.fits(line):
                    raise _CellTooLong
                yield line
        except UnicodeDecodeError as exc:
            raise _Unreadable(DataError("not valid UTF-8 (Comprehend CSV must be UTF-8)",
                                        file=display, line=_utf8_error_line(path)),
                              alone=True) from exc


def _utf8_error_line(path: Path) -> int | None:
    """The line of a file's first byte that is not UTF-8 (read again, a block at a time)."""
    with path.open("rb") as handle:
        return utf8_error_line(iter(lambda: handle.read(_CHUNK), b""))


def _iter_rows(path: Path, display: str, task: TaskConfig) -> Iterator[Document]:
    declared = set(task.labels)
    problems = Problems()
    max_chars = limits.ROW_CHARS.value()
    # One cell may be somewhat past the row limit and still be counted exactly ("document has N
    # characters"); a longer one is refused before it is held (:class:`_CellMeter`).
    labels_chars = sum(len(label) + len(task.label_delimiter) for label in task.labels)
    cell_limit = 2 * max_chars + labels_chars + 64
    allow_cells_of(cell_limit)
    position = [0]
    meter = _CellMeter(cell_limit)
    reader = csv.reader(_lines(path, display, 4 * cell_limit + 8, position, meter), strict=True)
    label_sets: dict[str, frozenset[str]] = {}  # one frozenset per distinct label cell
    line = 1
    first = True
    count = 0

    def too_long(line: int) -> DataError:
        return DataError(f"a cell of the row starting here has more than {cell_limit} "
                         f"characters; a document's limit is {max_chars} "
                         f"({limits.ROW_CHARS.hint}); the rows after it are not read",
                         file=display, line=line)

    try:
        for row in reader:
            meter.row_read()
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
    except _CellTooLong:
        problems.add(too_long(line))
    except csv.Error as exc:
        if str(exc).startswith("field larger than field limit"):  # lowered by someone else
            problems.add(too_long(line))
        else:
            problems.add(DataError(f"malformed CSV in the row starting here: {exc} (the rows "
                                   "after it are not read)", file=display, line=line))
    problems.raise_if_any()
    if not count:
        raise DataError("the dataset has no documents", file=display)


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
                   f"(declared: {listed(sorted(declared))})")
    if len(set(parts)) != len(parts):
        raise fail(f"label repeated in {_shown(label_cell)}")
    return frozenset(parts)


def _shown(value: str, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a cell can be a megabyte long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
