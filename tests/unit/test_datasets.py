"""Tests for dataset files: Comprehend CSV reading, corpus building, hashing and the holdout."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from pathlib import Path

import pytest

from reconciler.adapters.comprehend_csv import iter_dataset, read_dataset
from reconciler.adapters.corpus import load_corpus
from reconciler.adapters.dataset_files import HashCache, fingerprint
from reconciler.adapters.loader import load_spec
from reconciler.core.documents import Document, holdout_split
from reconciler.core.layout import HASH_CACHE
from reconciler.core.spec import FlywheelSpec, TaskConfig
from reconciler.errors import DataError, SpecError

MULTI_CLASS = TaskConfig(mode="MULTI_CLASS", labels=["spam", "ham"])
MULTI_LABEL = TaskConfig(mode="MULTI_LABEL", labels=["a", "b", "c"])
UNICODE = "caf\u00e9 \u00fcber \u65e5\u672c \U0001f600"
MULTI_LABEL_SEMICOLON = TaskConfig(mode="MULTI_LABEL", labels=["a|x", "b"], label_delimiter=";")


def write(root: Path, relative: str, content: bytes | str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def read(tmp_path: Path, content: bytes | str, task: TaskConfig = MULTI_CLASS) -> list[Document]:
    return read_dataset(write(tmp_path, "data/d.csv", content), "data/d.csv", task)


def read_error(tmp_path: Path, content: bytes | str, task: TaskConfig = MULTI_CLASS) -> DataError:
    with pytest.raises(DataError) as info:
        read(tmp_path, content, task)
    error = info.value
    assert type(error) is DataError
    assert error.file == "data/d.csv"
    assert "\n" not in str(error)
    return error


def make_spec(datasets: list[tuple[str, str, str]], *, mode: str = "MULTI_CLASS",
              labels: tuple[str, ...] = ("spam", "ham"), minimum: int = 1,
              holdout: float = 0.2) -> FlywheelSpec:
    return FlywheelSpec.model_validate({
        "name": "demo",
        "task": {"mode": mode, "labels": list(labels), "minDocumentsPerLabel": minimum},
        "datasets": [{"name": n, "type": t, "path": p} for n, t, p in datasets],
        "recipe": {"algorithm": "linear-svm", "holdoutFraction": holdout},
    })


def rows(label: str, count: int, prefix: str = "") -> str:
    return "".join(f"{label},{prefix}{label} document number {i}\n" for i in range(count))


# --------------------------------------------------------------------------------------------
# read_dataset: valid files


@pytest.mark.parametrize(
    ("task", "content", "expected"),
    [
        (MULTI_CLASS, "spam,buy now\nham,hello there\n",
         [({"spam"}, "buy now", 1), ({"ham"}, "hello there", 2)]),
        (MULTI_CLASS, 'spam,"hello, world"\nham,"say ""hi"""\n',
         [({"spam"}, "hello, world", 1), ({"ham"}, 'say "hi"', 2)]),
        (MULTI_CLASS, "spam,no final newline", [({"spam"}, "no final newline", 1)]),
        (MULTI_CLASS, "spam,x\r\nham,y\r\n", [({"spam"}, "x", 1), ({"ham"}, "y", 2)]),
        (MULTI_CLASS, 'spam,"line one\nline two"\nham,after\n',
         [({"spam"}, "line one\nline two", 1), ({"ham"}, "after", 3)]),
        (MULTI_CLASS, "spam,x\n\n   \nham,y\n", [({"spam"}, "x", 1), ({"ham"}, "y", 4)]),
        (MULTI_CLASS, b"\xef\xbb\xbfspam,x\nham,y\n", [({"spam"}, "x", 1), ({"ham"}, "y", 2)]),
        (MULTI_CLASS, f"ham,{UNICODE}\n", [({"ham"}, UNICODE, 1)]),
        (MULTI_LABEL, "a|b,text one\nc,text two\n",
         [({"a", "b"}, "text one", 1), ({"c"}, "text two", 2)]),
        (MULTI_LABEL_SEMICOLON, "a|x;b,semi\n", [({"a|x", "b"}, "semi", 1)]),
    ],
    ids=[
        "multi-class",
        "quoted-comma-and-quote",
        "no-final-newline",
        "crlf",
        "multi-line-quoted-text",
        "blank-lines-skipped",
        "utf8-bom-accepted",
        "unicode-text",
        "multi-label",
        "multi-label-other-delimiter",
    ],
)
def test_valid_files(tmp_path: Path, task: TaskConfig, content, expected) -> None:
    documents = read(tmp_path, content, task)
    assert [(set(d.labels), d.text, d.line) for d in documents] == expected


# --------------------------------------------------------------------------------------------
# read_dataset: bad rows name their line


@pytest.mark.parametrize(
    ("task", "content", "line", "message"),
    [
        (MULTI_CLASS, "spam,x\nham,y\neggs,z\n", 3, "unknown label 'eggs'"),
        (MULTI_CLASS, "spam,x\nSpam,y\n", 2, "unknown label 'Spam'"),
        (MULTI_CLASS, "spam,x\nspam|ham,y\n", 2, "unknown label 'spam|ham'"),
        (MULTI_CLASS, "label,text\nspam,x\n", 1, "looks like a header row"),
        (MULTI_CLASS, 'spam,"a\nb\nc"\nham,y\neggs,z\n', 5, "unknown label 'eggs'"),
        (MULTI_CLASS, "spam,x\nham,   \n", 2, "document text is empty"),
        (MULTI_CLASS, "spam,x\nham,\n", 2, "document text is empty"),
        (MULTI_CLASS, "spam,x\n,no label here\n", 2, "row has no label"),
        (MULTI_CLASS, "spam,x\nham\n", 2, "expected 2 columns (label,text), found 1"),
        (MULTI_CLASS, "spam,x\nham,hello, world\n", 2,
         "found 3; quote the text if it contains commas"),
        (MULTI_CLASS, 'spam,x\nham,"hello "world" x\n', 2, "malformed CSV"),
        (MULTI_CLASS, b"spam,x\nham,caf\xe9\n", 2, "not valid UTF-8"),
        (MULTI_CLASS, b"\xef\xbb\xbfspam,x\nham,ok\nspam,\xff\n", 3, "not valid UTF-8"),
        (MULTI_CLASS, b"spam,x\nham,\x00\x01\x02\x03\n", 2, "NUL byte"),
        (MULTI_CLASS, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, "not valid UTF-8"),
        (MULTI_LABEL, "a,x\nb|d,y\n", 2, "unknown label 'd'"),
        (MULTI_LABEL, "a,x\na|a,y\n", 2, "label repeated in 'a|a'"),
        (MULTI_LABEL, "a,x\na|,y\n", 2, "empty label in 'a|'"),
        (MULTI_LABEL, "a,x\n||,y\n", 2, "empty label"),
        (MULTI_CLASS, "spam,x\n spam,y\n", 2,
         "label ' spam' has leading or trailing spaces; did you mean 'spam'?"),
        (MULTI_CLASS, "spam,x\nham ,y\n", 2,
         "label 'ham ' has leading or trailing spaces; did you mean 'ham'?"),
        (MULTI_CLASS, 'spam,x\nham,y\n" spam ",z\n', 3,
         "label ' spam ' has leading or trailing spaces; did you mean 'spam'?"),
        (MULTI_CLASS, "spam,x\nSPAM ,y\n", 2,
         "label 'SPAM ' has leading or trailing spaces; did you mean 'spam'?"),
        (MULTI_CLASS, "spam,x\nham,y\n\teggs,z\n", 3, "label '\\teggs' has leading or "
         "trailing spaces"),
        (MULTI_LABEL, "a,x\na | b,y\n", 2,
         "label 'a ' has leading or trailing spaces; did you mean 'a'?"),
        (MULTI_LABEL, "a,x\nb|c |a,y\n", 2,
         "label 'c ' has leading or trailing spaces; did you mean 'c'?"),
        (MULTI_LABEL, "a,x\n b,y\n", 2,
         "label ' b' has leading or trailing spaces; did you mean 'b'?"),
    ],
    ids=[
        "unknown-label",
        "label-case-matters",
        "multi-class-with-delimiter",
        "header-row",
        "unknown-label-after-multi-line-row",
        "blank-text",
        "empty-text",
        "row-without-label",
        "one-column",
        "three-columns-unquoted-hint",
        "malformed-quoting",
        "non-utf8",
        "non-utf8-after-bom",
        "nul-byte",
        "binary-png",
        "multi-label-unknown",
        "multi-label-repeated",
        "multi-label-trailing-delimiter",
        "multi-label-only-delimiters",
        "space-before-label",
        "space-after-label",
        "quoted-label-with-spaces",
        "case-and-space",
        "tab-before-unknown-label",
        "multi-label-spaces-around-delimiter",
        "multi-label-space-before-delimiter",
        "multi-label-single-with-space",
    ],
)
def test_bad_rows_name_their_line(tmp_path: Path, task: TaskConfig, content, line: int,
                                  message: str) -> None:
    error = read_error(tmp_path, content, task)
    assert error.line == line, str(error)
    assert message in error.message
    assert str(error).startswith(f"data/d.csv:{line}: ")


def test_unknown_label_message_lists_the_declared_labels(tmp_path: Path) -> None:
    error = read_error(tmp_path, "eggs,z\n")
    assert "declared: ham, spam" in error.message


def test_every_bad_row_of_a_file_is_reported_in_one_error(tmp_path: Path) -> None:
    # four mistakes, one run: each named with its line, in the order of the file
    content = "spam,fine\neggs,x\nham\nspam,fine again\nham,  \n,no label\n"
    error = read_error(tmp_path, content)
    assert error.line == 2
    assert str(error).endswith("(and 3 more problems in this file, at lines 3, 5, 6)")
    assert error.lines() == [
        str(error),
        "data/d.csv:3: expected 2 columns (label,text), found 1",
        "data/d.csv:5: document text is empty",
        "data/d.csv:6: row has no label",
    ]


def test_problems_past_twenty_are_counted_not_listed(tmp_path: Path) -> None:
    error = read_error(tmp_path, "spam,ok\n" + "eggs,x\n" * 27)
    lines = error.lines()
    assert len(lines) == 21
    assert [line.split(":")[1] for line in lines[:20]] == [str(n) for n in range(2, 22)]
    assert lines[20] == "data/d.csv: … and 7 more problems in this file"
    assert str(error).endswith("at lines 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, "
                               "18, 19, 20, 21 … and 7 more)")


def test_a_malformed_row_ends_the_listing_with_the_problems_before_it(tmp_path: Path) -> None:
    error = read_error(tmp_path, 'eggs,x\nham,"open "quote" x\nbacon,y\n')
    assert [line.split(": ", 1)[0] for line in error.lines()] == ["data/d.csv:1", "data/d.csv:2"]
    assert "malformed CSV" in error.lines()[1]
    assert "the rows after it are not read" in error.lines()[1]


@pytest.mark.parametrize(
    ("labels", "cell", "suggestion"),
    [
        (("games", "mail"), "gmaes", "did you mean 'games'?"),
        (("games", "mail"), "Games", "did you mean 'games'?"),
        (("database", "editors", "graphics"), "grahpics", "did you mean 'graphics'?"),
    ],
    ids=["transposed", "case", "among-several"],
)
def test_unknown_label_suggests_the_nearest_declared_one(tmp_path: Path, labels, cell: str,
                                                          suggestion: str) -> None:
    task = TaskConfig(mode="MULTI_CLASS", labels=list(labels))
    error = read_error(tmp_path, f"{labels[0]},ok\n{cell},x\n", task)
    assert f"unknown label {cell.strip()!r}; {suggestion} (declared: " in error.message


def test_an_unknown_label_far_from_every_label_gets_no_suggestion(tmp_path: Path) -> None:
    error = read_error(tmp_path, "spam,ok\nzzzzzzzz,x\nhma,y\n")
    assert [line.split(": ", 1)[1] for line in error.lines()[1:]] == [
        "unknown label 'hma'; did you mean 'ham'? (declared: ham, spam)"]
    assert error.message == "unknown label 'zzzzzzzz' (declared: ham, spam)"


def test_a_long_declared_label_list_is_never_cut_silently(tmp_path: Path) -> None:
    labels = [f"label{i:02d}" for i in range(28)]
    task = TaskConfig(mode="MULTI_CLASS", labels=labels)
    error = read_error(tmp_path, "eggs,x\n", task)
    assert error.message.endswith(
        "(declared: " + ", ".join(labels[:12]) + " … and 16 more)"), error.message


@pytest.mark.parametrize(
    "header",
    ["label,text", "LABEL,TEXT", "Label, Text", "text,label", "labels,document", "class,x"],
)
def test_a_header_row_is_named_as_one(tmp_path: Path, header: str) -> None:
    # only the first row can be a header: the same cells later are an ordinary bad row
    error = read_error(tmp_path, f"\n{header}\nspam,x\n{header}\n")
    assert error.line == 2
    assert error.message == "looks like a header row: Comprehend CSV has no header; remove it"
    (later,) = error.others
    assert later.line == 4 and "looks like a header" not in later.message


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n\n", b"\xef\xbb\xbf", b"  \n\t\n"],
    ids=["empty", "only-newlines", "only-bom", "only-whitespace"],
)
def test_file_without_documents(tmp_path: Path, content: bytes) -> None:
    error = read_error(tmp_path, content)
    assert "no documents" in error.message


def test_unterminated_quote_names_the_row_where_it_opens(tmp_path: Path) -> None:
    # The quote opens on line 2 and is never closed: the culprit is line 2, not the end of file.
    content = 'spam,x\nham,"unterminated\n' + "spam,more text\n" * 50
    error = read_error(tmp_path, content)
    assert "malformed CSV" in error.message
    assert error.line == 2, str(error)


# --------------------------------------------------------------------------------------------
# load_corpus


def test_corpus_with_test_datasets(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", rows("spam", 3) + rows("ham", 3))
    write(tmp_path, "data/test.csv", rows("spam", 1, "t ") + rows("ham", 2, "t "))
    spec = make_spec([("tr", "TRAIN", "data/train.csv"), ("te", "TEST", "data/test.csv")],
                     minimum=3)
    corpus = load_corpus(spec, tmp_path)
    assert corpus.test_source == "TEST datasets"
    assert (len(corpus.train), len(corpus.test)) == (6, 3)


def test_corpus_accumulates_every_train_dataset(tmp_path: Path) -> None:
    write(tmp_path, "data/v1.csv", rows("spam", 2) + rows("ham", 2))
    write(tmp_path, "data/v2.csv", rows("spam", 2, "v2 ") + rows("ham", 2, "v2 "))
    write(tmp_path, "data/test.csv", rows("spam", 1, "t ") + rows("ham", 1, "t "))
    spec = make_spec([("v1", "TRAIN", "data/v1.csv"), ("v2", "TRAIN", "data/v2.csv"),
                      ("te", "TEST", "data/test.csv")], minimum=4)
    assert len(load_corpus(spec, tmp_path).train) == 8


def test_corpus_multi_label(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", "a|b,one\nb|c,two\nc|a,three\n")
    write(tmp_path, "data/test.csv", "a|b|c,four\n")
    spec = make_spec([("tr", "TRAIN", "data/train.csv"), ("te", "TEST", "data/test.csv")],
                     mode="MULTI_LABEL", labels=("a", "b", "c"), minimum=2)
    corpus = load_corpus(spec, tmp_path)
    assert corpus.test[0].labels == frozenset({"a", "b", "c"})


def test_corpus_holdout_when_no_test_dataset(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", rows("spam", 100) + rows("ham", 100))
    spec = make_spec([("tr", "TRAIN", "data/train.csv")], minimum=10, holdout=0.25)
    corpus = load_corpus(spec, tmp_path)
    assert corpus.test_source == "holdout"
    assert len(corpus.train) + len(corpus.test) == 200
    assert not {d.text for d in corpus.train} & {d.text for d in corpus.test}
    assert 30 <= len(corpus.test) <= 70


@pytest.mark.parametrize(
    ("train", "minimum", "label", "count"),
    [
        (rows("spam", 5) + rows("ham", 2), 3, "ham", 2),
        (rows("spam", 5), 1, "ham", 0),
        (rows("spam", 9) + rows("ham", 12), 10, "spam", 9),
    ],
    ids=["ham-2-of-3", "ham-absent", "spam-9-of-10"],
)
def test_too_few_documents_per_label(tmp_path: Path, train: str, minimum: int, label: str,
                                     count: int) -> None:
    write(tmp_path, "data/train.csv", train)
    write(tmp_path, "data/test.csv", rows("spam", 1, "t ") + rows("ham", 1, "t "))
    spec = make_spec([("tr", "TRAIN", "data/train.csv"), ("te", "TEST", "data/test.csv")],
                     minimum=minimum)
    with pytest.raises(DataError) as info:
        load_corpus(spec, tmp_path)
    error = info.value
    assert f"label {label!r} has {count} training documents" in error.message
    assert f"minDocumentsPerLabel is {minimum}" in error.message
    assert "data/train.csv" in str(error)
    assert error.flywheel == "demo"


def test_test_data_missing_a_label(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", rows("spam", 3) + rows("ham", 3))
    write(tmp_path, "data/test.csv", rows("spam", 2, "t "))
    spec = make_spec([("tr", "TRAIN", "data/train.csv"), ("te", "TEST", "data/test.csv")])
    with pytest.raises(DataError) as info:
        load_corpus(spec, tmp_path)
    error = info.value
    assert "label 'ham' has no document in the TEST datasets" in error.message
    assert error.file == "data/test.csv"


def test_holdout_missing_a_label(tmp_path: Path) -> None:
    # one ham document: wherever the hash puts it, train or holdout lacks 'ham'
    write(tmp_path, "data/train.csv", rows("spam", 50) + rows("ham", 1))
    spec = make_spec([("tr", "TRAIN", "data/train.csv")], minimum=1)
    with pytest.raises(DataError) as info:
        load_corpus(spec, tmp_path)
    assert "'ham'" in info.value.message


def test_every_label_short_of_documents_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", rows("a", 1) + rows("b", 5) + rows("c", 2))
    write(tmp_path, "data/test.csv", rows("a", 1, "t "))
    spec = make_spec([("tr", "TRAIN", "data/train.csv"), ("te", "TEST", "data/test.csv")],
                     labels=("a", "b", "c"), minimum=3)
    with pytest.raises(DataError) as info:
        load_corpus(spec, tmp_path)
    assert [line.split(": ", 1)[1] for line in info.value.lines()[1:]] == [
        "label 'b' has no document in the TEST datasets; the test data must include every label",
        "label 'c' has 2 training documents; task.minDocumentsPerLabel is 3",
        "label 'c' has no document in the TEST datasets; the test data must include every label",
    ]
    assert str(info.value).startswith(
        "data/train.csv: label 'a' has 1 training documents; task.minDocumentsPerLabel is 3 "
        "(and 3 more problems)")


def test_bad_row_in_a_corpus_names_the_dataset_file(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", rows("spam", 3) + rows("ham", 3))
    write(tmp_path, "data/test.csv", "spam,x\nham,y\nbacon,z\n")
    spec = make_spec([("tr", "TRAIN", "data/train.csv"), ("te", "TEST", "data/test.csv")])
    with pytest.raises(DataError) as info:
        load_corpus(spec, tmp_path)
    assert str(info.value).startswith("data/test.csv:3: unknown label 'bacon'")


# --------------------------------------------------------------------------------------------
# train/test overlap (leakage)

TEST_ROWS = rows("spam", 20, "test ") + rows("ham", 20, "test ")
TRAIN_ROWS = rows("spam", 20, "train ") + rows("ham", 20, "train ")


def overlap_spec(*datasets: tuple[str, str, str] | tuple[str, str, str, bool]) -> FlywheelSpec:
    return FlywheelSpec.model_validate({
        "name": "demo",
        "task": {"mode": "MULTI_CLASS", "labels": ["spam", "ham"], "minDocumentsPerLabel": 1},
        "datasets": [{"name": d[0], "type": d[1], "path": d[2],
                      **({"allowTestOverlap": d[3]} if len(d) > 3 else {})} for d in datasets],
    })


def overlap_error(tmp_path: Path, spec: FlywheelSpec) -> DataError:
    with pytest.raises(DataError) as info:
        load_corpus(spec, tmp_path)
    assert "\n" not in str(info.value)
    return info.value


def test_a_copy_of_the_test_file_declared_as_train_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", TRAIN_ROWS)
    write(tmp_path, "data/test.csv", TEST_ROWS)
    write(tmp_path, "data/copy.csv", TEST_ROWS)
    error = overlap_error(tmp_path, overlap_spec(("train", "TRAIN", "data/train.csv"),
                                                 ("copy", "TRAIN", "data/copy.csv"),
                                                 ("test", "TEST", "data/test.csv")))
    assert error.message.startswith("TRAIN dataset 'copy' (data/copy.csv) shares 40 documents "
                                    "with TEST dataset 'test' (data/test.csv) (compared after")
    assert "set allowTestOverlap: true on the TRAIN dataset" in error.message
    assert error.file == "data/copy.csv"  # without a spec location: the TRAIN dataset's file
    assert error.flywheel == "demo"


def test_a_symlink_to_the_test_file_declared_as_train_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", TRAIN_ROWS)
    write(tmp_path, "data/test.csv", TEST_ROWS)
    (tmp_path / "data/link.csv").symlink_to("test.csv")
    error = overlap_error(tmp_path, overlap_spec(("train", "TRAIN", "data/train.csv"),
                                                 ("link", "TRAIN", "data/link.csv"),
                                                 ("test", "TEST", "data/test.csv")))
    assert "TRAIN dataset 'link' (data/link.csv) shares 40 documents" in error.message


def test_partial_overlap_counts_the_shared_documents(tmp_path: Path) -> None:
    test_lines = TEST_ROWS.splitlines(keepends=True)
    shared = test_lines[3:10] + test_lines[25:30]  # 12 test documents, one of them twice
    write(tmp_path, "data/train.csv", TRAIN_ROWS + "".join(shared) + test_lines[4])
    write(tmp_path, "data/test.csv", TEST_ROWS)
    error = overlap_error(tmp_path, overlap_spec(("train", "TRAIN", "data/train.csv"),
                                                 ("test", "TEST", "data/test.csv")))
    assert " shares 12 documents with TEST dataset 'test'" in error.message


def test_near_duplicates_differing_in_case_whitespace_or_width_count(tmp_path: Path) -> None:
    write(tmp_path, "data/test.csv", TEST_ROWS + "spam,Caf\u00e9 \uff21BC offer\n"
          + "ham,Stra\u00dfe meeting notes\n")
    near = ("spam,  TEST SPAM document   number 0 \n"   # case, spaces around and between
            'ham,"test\tham\ndocument number 1"\n'         # a tab and a line break
            "spam,CAFE\u0301 abc OFFER\n"                  # NFKC: decomposed é; U+FF21 in the test
            "ham,STRASSE Meeting Notes\n")                 # case folding: ß is ss
    write(tmp_path, "data/train.csv", TRAIN_ROWS + near)
    error = overlap_error(tmp_path, overlap_spec(("train", "TRAIN", "data/train.csv"),
                                                 ("test", "TEST", "data/test.csv")))
    assert " shares 4 documents with TEST dataset 'test'" in error.message


def test_every_overlapping_pair_is_named_in_the_one_error(tmp_path: Path) -> None:
    write(tmp_path, "data/test.csv", TEST_ROWS)
    write(tmp_path, "data/test2.csv", rows("spam", 3, "other ") + rows("ham", 3, "other "))
    write(tmp_path, "data/a.csv", TRAIN_ROWS + "".join(TEST_ROWS.splitlines(True)[:2]))
    write(tmp_path, "data/b.csv", rows("spam", 3, "other ") + TEST_ROWS)
    error = overlap_error(tmp_path, overlap_spec(("a", "TRAIN", "data/a.csv"),
                                                 ("b", "TRAIN", "data/b.csv"),
                                                 ("test", "TEST", "data/test.csv"),
                                                 ("test2", "TEST", "data/test2.csv")))
    assert error.message.startswith("TRAIN dataset 'a' (data/a.csv) shares 2 documents with TEST "
                                    "dataset 'test' (data/test.csv); also 'b' with 'test': 40, "
                                    "'b' with 'test2': 3 (compared after")


def test_the_overlap_error_names_the_spec_line_of_the_train_dataset(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", TRAIN_ROWS)
    write(tmp_path, "data/test.csv", TEST_ROWS)
    write(tmp_path, "data/copy.csv", TEST_ROWS)
    spec_file = load_spec(write(tmp_path, "specs/demo.yaml", (
        "name: demo\n"
        "task: {mode: MULTI_CLASS, labels: [spam, ham], minDocumentsPerLabel: 1}\n"
        "datasets:\n"
        "  - {name: train, type: TRAIN, path: data/train.csv}\n"
        "  - {name: test, type: TEST, path: data/test.csv}\n"
        "  - {name: copy, type: TRAIN, path: data/copy.csv}\n")), tmp_path)
    with pytest.raises(DataError) as info:
        load_corpus(spec_file.spec, tmp_path, spec_path=spec_file.path,
                    lines_of=spec_file.line_of)
    assert str(info.value).startswith("specs/demo.yaml:6: datasets[2]: TRAIN dataset 'copy' "
                                      "(data/copy.csv) shares 40 documents with TEST dataset "
                                      "'test' (data/test.csv)")


def test_allow_test_overlap_accepts_the_overlap_of_that_dataset_only(tmp_path: Path) -> None:
    write(tmp_path, "data/train.csv", TRAIN_ROWS)
    write(tmp_path, "data/test.csv", TEST_ROWS)
    write(tmp_path, "data/copy.csv", TEST_ROWS)
    write(tmp_path, "data/copy2.csv", TEST_ROWS)
    allowed = overlap_spec(("train", "TRAIN", "data/train.csv"),
                           ("copy", "TRAIN", "data/copy.csv", True),
                           ("test", "TEST", "data/test.csv"))
    corpus = load_corpus(allowed, tmp_path)
    assert (len(corpus.train), len(corpus.test)) == (80, 40)
    also = overlap_spec(("train", "TRAIN", "data/train.csv"),
                        ("copy", "TRAIN", "data/copy.csv", True),
                        ("copy2", "TRAIN", "data/copy2.csv"),
                        ("test", "TEST", "data/test.csv"))
    assert "TRAIN dataset 'copy2'" in overlap_error(tmp_path, also).message


def test_allow_test_overlap_is_left_out_of_dumps_unless_set() -> None:
    # an existing flywheel's params.yaml (and so its DVC stages) must not change
    spec = overlap_spec(("a", "TRAIN", "data/a.csv"), ("b", "TRAIN", "data/b.csv", True))
    dumped = [d.model_dump(mode="json", by_alias=True, exclude_none=True) for d in spec.datasets]
    assert dumped == [{"name": "a", "type": "TRAIN", "path": "data/a.csv"},
                      {"name": "b", "type": "TRAIN", "path": "data/b.csv",
                       "allowTestOverlap": True}]


# --------------------------------------------------------------------------------------------
# holdout_split


def documents(count: int, start: int = 0) -> list[Document]:
    return [Document(frozenset({"spam" if i % 2 else "ham"}), f"document text {i}", i + 1)
            for i in range(start, start + count)]


def texts(docs: list[Document]) -> set[str]:
    return {d.text for d in docs}


def test_holdout_is_deterministic_and_order_independent() -> None:
    docs = documents(500)
    train, test = holdout_split(docs, 0.2)
    shuffled = docs[:]
    random.Random(7).shuffle(shuffled)
    train2, test2 = holdout_split(shuffled, 0.2)
    assert texts(test) == texts(test2)
    assert texts(train) == texts(train2)
    assert texts(train) | texts(test) == texts(docs)
    assert not texts(train) & texts(test)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5], ids=["10pc", "20pc", "50pc"])
def test_holdout_size_follows_the_fraction(fraction: float) -> None:
    _, test = holdout_split(documents(4000), fraction)
    assert abs(len(test) / 4000 - fraction) < 0.03


@pytest.mark.parametrize(("small", "grown"), [(50, 500), (200, 2000)],
                         ids=["50-to-500", "200-to-2000"])
def test_holdout_is_stable_when_data_grows(small: int, grown: int) -> None:
    small_train, small_test = holdout_split(documents(small), 0.2)
    big_train, big_test = holdout_split(documents(small) + documents(grown - small, small), 0.2)
    assert small_test, "the small set must have a holdout for this test to mean anything"
    assert texts(small_test) <= texts(big_test)
    assert texts(small_train) <= texts(big_train)


def test_holdout_depends_on_text_only() -> None:
    a = Document(frozenset({"spam"}), "same text", 1)
    b = Document(frozenset({"ham"}), "same text", 99)
    for fraction in (0.1, 0.5, 0.9):
        train, test = holdout_split([a, b], fraction)
        assert len(train) in (0, 2) and len(test) in (0, 2)


# --------------------------------------------------------------------------------------------
# fingerprint


SPEC_TWO_DATASETS = """\
name: demo
task:
  mode: MULTI_CLASS
  labels: [spam, ham]
datasets:
  - name: one
    type: TRAIN
    path: data/one.csv
  - name: two
    type: TRAIN
    path: {second}
"""


def spec_file(root: Path, second: str = "data/two.csv"):
    path = write(root, "specs/demo.yaml", SPEC_TWO_DATASETS.format(second=second))
    return load_spec(path, root)


def fingerprint_error(root: Path, second: str) -> SpecError:
    loaded = spec_file(root, second)
    with pytest.raises(SpecError) as info:
        fingerprint(loaded.spec, loaded.path, loaded.line_of, root, HashCache(root))
    return info.value


def test_fingerprint_hashes_every_dataset(tmp_path: Path) -> None:
    write(tmp_path, "data/one.csv", "spam,x\n")
    write(tmp_path, "data/two.csv", "ham,y\nham,z\n")
    loaded = spec_file(tmp_path)
    files = fingerprint(loaded.spec, loaded.path, loaded.line_of, tmp_path, HashCache(tmp_path))
    assert [(f.dataset.name, f.md5, f.size) for f in files] == [
        ("one", hashlib.md5(b"spam,x\n").hexdigest(), 7),
        ("two", hashlib.md5(b"ham,y\nham,z\n").hexdigest(), 12),
    ]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "dataset file not found: data/two.csv"),
        (lambda root: (root / "data/two.csv").mkdir(parents=True), "dataset file not found"),
    ],
    ids=["missing-file", "directory-not-file"],
)
def test_fingerprint_missing_dataset_names_the_spec_line(tmp_path: Path, setup,
                                                         message: str) -> None:
    write(tmp_path, "data/one.csv", "spam,x\n")
    setup(tmp_path)
    error = fingerprint_error(tmp_path, "data/two.csv")
    assert type(error) is SpecError
    assert error.file == "specs/demo.yaml"
    assert error.line == 11
    assert error.field == "datasets[1].path"
    assert error.flywheel == "demo"
    assert message in error.message
    assert str(error).startswith("specs/demo.yaml:11: datasets[1].path: ")


@pytest.mark.parametrize(
    "target",
    ["/etc/hostname", "../../outside.csv"],
    ids=["absolute-target", "relative-target-escaping"],
)
def test_fingerprint_refuses_a_symlink_leaving_the_repository(tmp_path: Path,
                                                              target: str) -> None:
    root = tmp_path / "repo"
    write(root, "data/one.csv", "spam,x\n")
    write(tmp_path, "outside.csv", "ham,secret\n")
    (root / "data").mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / "data" / "two.csv")
    error = fingerprint_error(root, "data/two.csv")
    assert "outside the repository" in error.message
    assert error.line == 11
    assert error.field == "datasets[1].path"


def test_fingerprint_refuses_a_symlinked_data_folder_leaving_the_repository(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    write(tmp_path, "elsewhere/one.csv", "spam,x\n")
    write(tmp_path, "elsewhere/two.csv", "ham,x\n")
    os.symlink(tmp_path / "elsewhere", root / "data")
    loaded = spec_file(root)
    with pytest.raises(SpecError) as info:
        fingerprint(loaded.spec, loaded.path, loaded.line_of, root, HashCache(root))
    assert info.value.field == "datasets[0].path"
    assert info.value.line == 8


def test_fingerprint_follows_a_symlink_inside_data(tmp_path: Path) -> None:
    write(tmp_path, "data/one.csv", "spam,x\n")
    write(tmp_path, "data/archive/two-v1.csv", "ham,y\n")
    os.symlink("archive/two-v1.csv", tmp_path / "data" / "two.csv")
    loaded = spec_file(tmp_path)
    files = fingerprint(loaded.spec, loaded.path, loaded.line_of, tmp_path, HashCache(tmp_path))
    assert files[1].md5 == hashlib.md5(b"ham,y\n").hexdigest()


# --------------------------------------------------------------------------------------------
# HashCache


def cache_file(root: Path) -> dict:
    return json.loads((root / HASH_CACHE).read_text("utf-8"))


def test_hash_cache_matches_hashlib_and_persists(tmp_path: Path) -> None:
    content = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    path = write(tmp_path, "data/big.csv", content)
    cache = HashCache(tmp_path)
    md5, size = cache.md5(path)
    assert (md5, size) == (hashlib.md5(content).hexdigest(), len(content))
    assert not (tmp_path / HASH_CACHE).exists(), "nothing is written before save()"
    cache.save()
    entry = cache_file(tmp_path)[str(path)]
    assert entry[0] == len(content)
    assert entry[-1] == md5


def test_hash_cache_reuses_a_cached_digest_without_reading_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "data/a.csv", "spam,x\n")
    first = HashCache(tmp_path)
    first.md5(path)
    first.save()
    # Plant a digest the file does not have: a fresh cache that returns it has not re-read it.
    entries = cache_file(tmp_path)
    entries[str(path)][-1] = "f" * 32
    (tmp_path / HASH_CACHE).write_text(json.dumps(entries), "utf-8")
    again = HashCache(tmp_path)
    assert again.md5(path) == ("f" * 32, 7)
    assert again.dirty is False


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.write_bytes(b"spam,x\nham,y\n"),
        lambda p: p.write_bytes(b"ham,x\n!"),
        lambda p: (p.unlink(), p.write_bytes(b"spam,x\n")),
    ],
    ids=["grown", "same-size-rewritten", "replaced-same-content"],
)
def test_hash_cache_recomputes_after_the_file_changes(tmp_path: Path, change) -> None:
    path = write(tmp_path, "data/a.csv", "spam,x\n")
    cache = HashCache(tmp_path)
    cache.md5(path)
    cache.save()
    entries = cache_file(tmp_path)
    entries[str(path)][-1] = "f" * 32  # stale digest: must not survive a change to the file
    (tmp_path / HASH_CACHE).write_text(json.dumps(entries), "utf-8")
    change(path)
    fresh = HashCache(tmp_path)
    assert fresh.md5(path)[0] == hashlib.md5(path.read_bytes()).hexdigest()
    fresh.save()
    assert cache_file(tmp_path)[str(path)][-1] == hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("garbage", ["{not json", "[1, 2, 3]", ""], ids=["corrupt", "a-list",
                                                                          "empty"])
def test_hash_cache_rebuilds_a_bad_cache_file(tmp_path: Path, garbage: str) -> None:
    write(tmp_path, HASH_CACHE, garbage)
    path = write(tmp_path, "data/a.csv", "spam,x\n")
    cache = HashCache(tmp_path)
    assert cache.md5(path)[0] == hashlib.md5(b"spam,x\n").hexdigest()
    cache.save()
    assert str(path) in cache_file(tmp_path)


def test_fingerprint_fills_the_cache(tmp_path: Path) -> None:
    write(tmp_path, "data/one.csv", "spam,x\n")
    write(tmp_path, "data/two.csv", "ham,y\n")
    loaded = spec_file(tmp_path)
    cache = HashCache(tmp_path)
    fingerprint(loaded.spec, loaded.path, loaded.line_of, tmp_path, cache)
    cache.save()
    stored = cache_file(tmp_path)
    assert {Path(k).name for k in stored} == {"one.csv", "two.csv"}


# --------------------------------------------------------------------------------------------
# read_dataset: reading a line at a time, within bounds


def test_a_cell_far_past_the_row_limit_stops_the_reading(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "10")  # cells of 2 x 10 + 9 + 64 = 93 at most
    error = read_error(tmp_path, 'spam,ok\nham,"' + "x\n" * 100 + '"\nspam,after\n')
    assert error.line == 2
    assert error.message.startswith("a cell of the row starting here has more than 93 "
                                    "characters; a document's limit is 10")


def test_a_line_longer_than_any_row_is_never_held(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "10")  # lines of 4 x 93 + 8 = 380 at most
    error = read_error(tmp_path, "spam,ok\nham," + "x" * 5000 + "\nspam,after\n")
    assert error.line == 2
    assert error.message.startswith("line is longer than 380 characters")


def test_reading_never_changes_the_csv_modules_cell_limit_while_rows_are_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is process-wide: reading bounds cells itself, so it never swaps the limit per
    row (a reader in another thread would see it change), and lowers it never."""
    before = csv.field_size_limit()
    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "4")
    documents = iter_dataset(write(tmp_path, "data/d.csv", "spam,x\nham,y\n"), "data/d.csv",
                             MULTI_CLASS)
    assert next(documents).text == "x"
    assert csv.field_size_limit() == before  # another reader, between two rows, is not limited
    assert [d.text for d in documents] == ["y"]
    assert csv.field_size_limit() == before


def test_the_csv_modules_cell_limit_is_raised_once_for_what_reading_needs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = csv.field_size_limit()
    try:
        csv.field_size_limit(1000)
        monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "10000")  # cells of 20073 at most
        path = write(tmp_path, "data/d.csv", "spam," + "x" * 9000 + "\nham,y\n")
        assert [len(d.text) for d in read_dataset(path, "data/d.csv", MULTI_CLASS)] == [9000, 1]
        assert csv.field_size_limit() == 2 * 10000 + 9 + 64
        monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "10")
        read_dataset(write(tmp_path, "data/e.csv", "spam,x\n"), "data/e.csv", MULTI_CLASS)
        assert csv.field_size_limit() == 2 * 10000 + 9 + 64  # never lowered
    finally:
        csv.field_size_limit(before)


@pytest.mark.parametrize(
    ("cell", "refused"),
    [
        ('"' + "x" * 93 + '"', False),  # exactly the cell limit (2 x 10 + 9 + 64)
        ('"' + "x" * 94 + '"', True),
        ('"' + '""' * 93 + '"', False),  # an escaped quote counts one
        ('"' + '""' * 94 + '"', True),
        ('"' + "ab\n" * 31 + '"', False),  # 93: the line ends inside count
        ('"' + "ab\r\n" * 24 + '"', True),  # 96
        ("x" * 94, True),  # unquoted, on one line
    ],
    ids=["at-limit", "past-limit", "quotes-at-limit", "quotes-past-limit",
         "lines-at-limit", "crlf-lines-past-limit", "unquoted-past-limit"],
)
def test_a_cell_is_measured_as_the_csv_module_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cell: str, refused: bool) -> None:
    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "10")
    content = "spam,ok\nham," + cell + "\nspam,after\n"
    with pytest.raises(DataError) as info:
        read(tmp_path, content)
    if refused:
        assert info.value.message.startswith("a cell of the row starting here has more than 93")
        assert info.value.line == 2
    else:  # read, then refused for its length as a document
        assert info.value.message.startswith("document has")
        assert not info.value.others


def test_a_cell_far_past_the_limit_across_many_lines_is_never_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "10")
    error = read_error(tmp_path, 'spam,ok\nham,"' + 'a ""quoted"" line\n' * 100_000 + '"\n')
    assert error.line == 2
    assert error.message.startswith("a cell of the row starting here has more than 93")


def test_the_cell_bound_agrees_with_the_csv_modules_own_limit() -> None:
    """Every small CSV text and limit: the rows read, or the first error, are the csv module's
    own under ``csv.field_size_limit(limit)`` (what the reader did before bounding cells itself).
    """
    import io

    from reconciler.adapters import comprehend_csv

    class TooLong(Exception):
        pass

    def lines(text: str):
        handle = io.StringIO(text, newline="")
        while line := handle.readline():
            yield line

    def outcome(reader, after_row):
        rows: list[object] = []
        try:
            for row in reader:
                after_row()
                rows.append(row)
        except TooLong:
            rows.append("too long")
        except csv.Error as exc:
            rows.append("too long" if str(exc).startswith("field larger") else str(exc))
        return rows

    def metered(text: str, meter):
        for line in lines(text):
            if not meter.fits(line):
                raise TooLong
            yield line

    rng = random.Random(20)
    pieces = ["a", "b", ",", '"', '""', "\n", "\r", "\r\n", " ", "x,y", '"a"']
    before = csv.field_size_limit()
    try:
        for _ in range(20_000):
            text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 24)))
            limit = rng.randint(1, 12)
            csv.field_size_limit(limit)
            expected = outcome(csv.reader(lines(text), strict=True), lambda: None)
            csv.field_size_limit(before)
            meter = comprehend_csv._CellMeter(limit)
            got = outcome(csv.reader(metered(text, meter), strict=True), meter.row_read)
            assert got == expected, (text, limit)
    finally:
        csv.field_size_limit(before)


def test_readers_in_several_threads_read_the_same(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "50")
    short = write(tmp_path, "data/short.csv", 'spam,"a, b"\n' * 500)
    long_cell = write(tmp_path, "data/long.csv", "spam,ok\n" + 'ham,"' + "x\n" * 200 + '"\n')
    results: dict[str, list[object]] = {"short": [], "long": []}

    def work() -> None:
        for _ in range(20):
            results["short"].append(len(read_dataset(short, "data/short.csv", MULTI_CLASS)))
            with pytest.raises(DataError) as info:
                read_dataset(long_cell, "data/long.csv", MULTI_CLASS)
            results["long"].append(info.value.message.split(";")[0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["short"] == [500] * 80
    assert set(results["long"]) == {"a cell of the row starting here has more than 173 "
                                    "characters"}


def test_a_file_that_is_not_utf8_far_in_names_the_line(tmp_path: Path) -> None:
    content = b"spam,ok\n" * 300_000 + b"ham,caf\xe9\n"  # past the first blocks read
    error = read_error(tmp_path, content)
    assert error.line == 300_001
    assert error.message.startswith("not valid UTF-8")
