"""Which unlabelled documents to label next: ``flywheel suggest`` (active learning).

The pool is streamed (a text file, one document per line, blank lines skipped; or a CSV with a
header row and a ``text`` column, or ``text_column``), classified in batches of :data:`BATCH`
with the active model (or ``version``), and only the best candidates are kept
(:class:`reconciler.core.suggest.TopK`, or a seeded reservoir for ``random``): memory is bounded
by the batch and the keeper, not the pool. The ranking is pure: :mod:`reconciler.core.suggest`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from reconciler import limits
from reconciler.adapters.comprehend_csv import allow_cells_of  # the csv module's shared limit
from reconciler.adapters.lake import Lake
from reconciler.core import suggest as ranking
from reconciler.core.spec import Mode
from reconciler.errors import DataError, FlywheelError, NotFoundError
from reconciler.runtime.classify import ModelCache, load_version

#: Documents classified at once: large enough for the vectoriser, small enough to bound memory.
BATCH = 512
#: ``count`` larger than this is refused (the keeper holds ten times ``count`` documents).
MAX_COUNT = 10_000

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Suggestions:
    """The documents to label next, most useful first (``random``: in pool order).

    Each :class:`~reconciler.core.suggest.Candidate` has its pool line, its text, the model's
    guess (its labels) with that guess's probability, and its uncertainty score (``random``: the
    same uncertainty, for review; it did not choose it).
    """

    name: str
    version: str
    strategy: str
    mode: str
    pool: str
    documents: int  # documents read from the pool
    picked: list[ranking.Candidate]


def suggest(root: Path, name: str, pool: Path, count: int, strategy: str, *,
            version: str | None = None, text_column: str | None = None, seed: int = 0,
            lake: Lake | None = None, models: ModelCache | None = None,
            progress: Progress | None = None, display: str | None = None) -> Suggestions:
    """Rank the documents of ``pool`` for labelling with ``name``'s active model (or
    ``version``); see :mod:`reconciler.core.suggest` for the strategies."""
    if strategy not in ranking.STRATEGIES:
        raise FlywheelError(f"unknown strategy {strategy!r}: choose one of "
                            f"{', '.join(ranking.STRATEGIES)}")
    if not 1 <= count <= MAX_COUNT:
        raise FlywheelError(f"--count must be 1..{MAX_COUNT}, not {count}")
    shown = display or str(pool)
    if not pool.is_file():
        raise NotFoundError("no such pool file" if not pool.exists()
                            else "the pool is not a regular file", file=shown)
    chosen, record, model = load_version(root, name, version, lake=lake, models=models,
                                         hint="; or give --version")
    mode = Mode(record.mode)
    keeper = ranking.keeper_for(strategy, count, seed)
    scored_by = ranking.scored_by(strategy)
    read = 0
    batch: list[tuple[int, str]] = []

    def flush() -> None:
        texts = [text for _, text in batch]
        predicted, scores, _ = model.predict_with_scores(texts, mode, record.labels)
        for (line, text), labels, score in zip(batch, predicted, scores, strict=True):
            guess = tuple(sorted(labels))
            probability = min((score[label] for label in guess), default=0.0)
            keeper.offer(ranking.Candidate(
                line, text, ranking.uncertainty(score, mode.value, scored_by), guess,
                probability))
        batch.clear()
        if progress is not None:
            progress(read)

    for line, text in pool_documents(pool, shown, text_column):
        read += 1
        batch.append((line, text))
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    if read == 0:
        raise DataError("the pool holds no document (blank lines are skipped)", file=shown)
    picked = ranking.chosen(keeper, count, strategy)
    return Suggestions(name, chosen, strategy, mode.value, shown, read, picked)


def pool_documents(path: Path, display: str, text_column: str | None = None
                   ) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of each document of a pool file, streamed; a ``.csv`` file (or any
    file with ``text_column``) is a CSV with a header row, anything else one document a line.
    A document longer than the document-length limit (``FLYWHEEL_MAX_ROW_CHARS``) is an error
    naming its line."""
    limit = limits.ROW_CHARS.value()
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if text_column is not None or path.suffix.lower() == ".csv":
                yield from _csv_documents(handle, display, text_column or "text", limit)
            else:
                yield from _line_documents(handle, display, limit)
    except UnicodeDecodeError as exc:
        raise DataError("not valid UTF-8 text", file=display) from exc
    except OSError as exc:
        raise DataError(f"cannot read the pool: {exc.strerror or exc}", file=display) from exc


def _bounded_lines(handle: TextIO, display: str, limit: int) -> Iterator[str]:
    number = 0
    while True:
        line = handle.readline(limit + 2)  # + the line end: never more than the limit held
        if not line:
            return
        number += 1
        if len(line.rstrip("\r\n")) > limit:
            raise DataError(f"document longer than {limit} characters "
                            f"({limits.ROW_CHARS.hint})", file=display, line=number)
        yield line


def _line_documents(handle: TextIO, display: str, limit: int) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(_bounded_lines(handle, display, limit), start=1):
        text = line.strip()
        if text:
            yield number, text


def _csv_documents(handle: TextIO, display: str, column: str, limit: int
                   ) -> Iterator[tuple[int, str]]:
    allow_cells_of(limit + 1)
    reader = csv.reader(_bounded_lines(handle, display, limit))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError("the pool holds no document (an empty CSV file)", file=display)
        names = [cell.strip() for cell in header]
        if column not in names:
            raise DataError(f"no {column!r} column in the header row ({', '.join(names)}); "
                            "name the column with --text-column", file=display, line=1)
        index = names.index(column)
        for row in reader:
            if len(row) > index and row[index].strip():
                yield reader.line_num, row[index].strip()
    except csv.Error as exc:
        raise DataError(f"not a readable CSV row: {exc}", file=display,
                        line=reader.line_num) from exc
