"""The pure ranking of ``flywheel suggest`` (reconciler.core.suggest) and the pool reader."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from reconciler.core import suggest as s
from reconciler.errors import DataError
from reconciler.runtime.suggest import pool_documents


@pytest.mark.parametrize(("scores", "mode", "strategy", "expected"), [
    ({"a": 0.5, "b": 0.5}, "MULTI_CLASS", "margin", 1.0),
    ({"a": 1.0, "b": 0.0}, "MULTI_CLASS", "margin", 0.0),
    ({"a": 0.7, "b": 0.2, "c": 0.1}, "MULTI_CLASS", "margin", 0.5),
    ({"a": 0.6, "b": 0.3, "c": 0.1}, "MULTI_CLASS", "diverse", 0.7),  # diverse ranks by margin
    ({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, "MULTI_CLASS", "entropy", 1.0),
    ({"a": 1.0, "b": 0.0, "c": 0.0}, "MULTI_CLASS", "entropy", 0.0),
    ({"a": 0.5, "b": 0.5, "c": 0.0, "d": 0.0}, "MULTI_CLASS", "entropy", 0.5),  # log 2 / log 4
    ({"a": 0.9, "b": 0.5}, "MULTI_LABEL", "margin", 1.0),  # b is undecided
    ({"a": 0.9, "b": 0.0}, "MULTI_LABEL", "margin", 0.2),
    ({"a": 0.5, "b": 1.0}, "MULTI_LABEL", "entropy", 1.0),
    ({"a": 0.9, "b": 0.0}, "MULTI_LABEL", "entropy",
     -(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1))),
])
def test_uncertainty(scores: dict[str, float], mode: str, strategy: str,
                     expected: float) -> None:
    assert s.uncertainty(scores, mode, strategy) == pytest.approx(expected)


def test_a_more_confident_document_is_less_uncertain_by_every_score() -> None:
    sure, unsure = {"a": 0.9, "b": 0.05, "c": 0.05}, {"a": 0.4, "b": 0.35, "c": 0.25}
    for strategy in ("margin", "entropy"):
        assert s.uncertainty(sure, "MULTI_CLASS", strategy) < s.uncertainty(
            unsure, "MULTI_CLASS", strategy)


@pytest.mark.parametrize(("scores", "mode", "strategy"), [
    ({"a": 1.0}, "MULTI_CLASS", "random"),
    ({}, "MULTI_CLASS", "margin"),
    ({"a": 1.0}, "OTHER", "margin"),
])
def test_uncertainty_refuses_what_it_cannot_score(scores: dict[str, float], mode: str,
                                                  strategy: str) -> None:
    with pytest.raises(ValueError):
        s.uncertainty(scores, mode, strategy)


def candidate(line: int, score: float, text: str | None = None) -> s.Candidate:
    return s.Candidate(line, text or f"document number {line} words", score)


def test_the_keeper_holds_the_best_k_in_bounded_memory() -> None:
    keeper = s.TopK(5)
    for line in range(1, 10_001):
        keeper.offer(candidate(line, (line * 7919 % 10_007) / 10_007))
        assert len(keeper) <= 5
    best = keeper.best_first()
    scores = sorted(((line * 7919 % 10_007) / 10_007 for line in range(1, 10_001)),
                    reverse=True)[:5]
    assert [c.score for c in best] == scores


def test_the_keeper_breaks_ties_by_the_earlier_line_and_keeps_exact_duplicates_once() -> None:
    keeper = s.TopK(2)
    for line in (3, 1, 2):
        keeper.offer(candidate(line, 0.5))
    assert [c.line for c in keeper.best_first()] == [1, 2]
    keeper = s.TopK(3)
    for line in range(1, 6):
        keeper.offer(candidate(line, 0.9, "The SAME text,  again"))
    keeper.offer(candidate(6, 0.1, "another one"))
    assert [c.line for c in keeper.best_first()] == [1, 6]


def test_an_evicted_document_may_come_back_as_a_duplicate_key() -> None:
    keeper = s.TopK(1)
    keeper.offer(candidate(1, 0.1, "alpha beta"))
    keeper.offer(candidate(2, 0.9, "gamma delta"))
    keeper.offer(candidate(3, 0.95, "alpha beta"))  # alpha beta was evicted: welcome again
    assert [c.line for c in keeper.best_first()] == [3]


def test_shingles_and_jaccard() -> None:
    assert s.shingles("A b, C") == {"a b", "b c"}
    assert s.shingles("word") == {"word"}
    assert s.jaccard(frozenset(), frozenset()) == 1.0
    assert s.jaccard(frozenset({"a", "b"}), frozenset({"b", "c"})) == pytest.approx(1 / 3)


def test_diversity_skips_near_duplicates_of_picked_documents() -> None:
    base = "a fast text editor for the terminal with syntax highlighting and macros"
    ranked = [candidate(1, 0.99, base), candidate(2, 0.98, base + " support"),
              candidate(3, 0.97, base.replace("macros", "plugins")),
              candidate(4, 0.5, "a mail server with spam filtering"),
              candidate(5, 0.4, "a chess engine")]
    diverse = s.select(ranked, 3, s.threshold_of("diverse"))
    assert [c.line for c in diverse] == [1, 4, 5]
    margin = s.select(ranked, 3, s.threshold_of("margin"))  # only the near-copy (2) dropped
    assert [c.line for c in margin] == [1, 3, 4]
    assert s.jaccard(s.shingles(base), s.shingles(base + " support")) >= 0.9


def test_select_gives_fewer_when_the_candidates_run_out() -> None:
    assert len(s.select([candidate(1, 0.5, "x y"), candidate(2, 0.4, "x y")], 5, 0.5)) == 1


def test_random_is_a_reservoir_reproducible_by_seed() -> None:
    def sample(seed: int) -> list[int]:
        reservoir = s.Reservoir(10, seed)
        for line in range(1, 1001):
            reservoir.offer(candidate(line, 0.0))
        assert len(reservoir) == 10
        return [c.line for c in reservoir.sample()]

    assert sample(0) == sample(0)
    assert sample(0) != sample(1)
    assert sample(0) == sorted(sample(0))
    # uniform: over many seeds, late lines are picked about as often as early ones
    late = sum(line > 500 for seed in range(200) for line in sample(seed))
    assert 850 < late < 1150


def test_the_keeper_is_a_multiple_of_count() -> None:
    assert s.keeper_size(7, "diverse") == 70
    with pytest.raises(ValueError):
        s.TopK(0)


def test_a_text_pool_skips_blank_lines_and_numbers_lines(tmp_path: Path) -> None:
    path = tmp_path / "pool.txt"
    path.write_text("first\n\n  \nsecond  \r\nthird", "utf-8")
    assert list(pool_documents(path, "pool.txt")) == [(1, "first"), (4, "second"), (5, "third")]


def test_a_csv_pool_reads_its_text_column(tmp_path: Path) -> None:
    path = tmp_path / "pool.csv"
    path.write_text('id,text\n1,"one, with a comma"\n2,\n3,"two\nlines"\n4,four\n', "utf-8")
    assert list(pool_documents(path, "pool.csv")) == [
        (2, "one, with a comma"), (5, "two\nlines"), (6, "four")]
    with pytest.raises(DataError, match=r"pool.csv:1: no 'body' column"):
        list(pool_documents(path, "pool.csv", "body"))


def test_a_pool_document_over_the_length_limit_names_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "10")
    path = tmp_path / "pool.txt"
    path.write_text("short\n" + "x" * 11 + "\n", "utf-8")
    with pytest.raises(DataError, match=r"pool.txt:2: document longer than 10 characters"):
        list(pool_documents(path, "pool.txt"))
    path.write_bytes(b"\xff\xfe\n")
    with pytest.raises(DataError, match="not valid UTF-8"):
        list(pool_documents(path, "pool.txt"))
