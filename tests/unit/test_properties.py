"""Property-based tests of the two readers of user files: the spec loader and the CSV reader.

Whatever the bytes, each either returns a valid result or raises one of the project's own errors
whose ``str()`` is a single line starting with the file's name: never another exception, never a
traceback. Files are written to a temporary folder made per example (no pytest fixtures, so
hypothesis can run many examples in one test).
"""

from __future__ import annotations

import csv
import io
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.adapters.comprehend_csv import read_dataset
from reconciler.adapters.loader import SpecFile, load_spec
from reconciler.core.documents import Document
from reconciler.core.spec import TaskConfig
from reconciler.errors import DataError, FlywheelError, SpecError

SPEC = "specs/x.yaml"
DATA = "data/d.csv"
PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

VALID_SPEC: dict[str, Any] = {
    "apiVersion": "flywheel-reconciler/v1",
    "name": "demo",
    "description": "a flywheel",
    "task": {"languageCode": "en", "mode": "MULTI_LABEL", "labels": ["spam", "ham"],
             "labelDelimiter": "|", "minDocumentsPerLabel": 2},
    "datasets": [{"name": "d1", "type": "TRAIN", "path": "data/train.csv"},
                 {"name": "d2", "type": "TEST", "path": "data/test.csv"}],
    "recipe": {"algorithm": "linear-svm", "C": 0.5, "classWeight": None, "seed": 1,
               "features": {"ngramRange": [1, 2], "minDf": 1, "sublinearTf": True}},
    "activeModel": "v1",
    "promotion": {"minF1": 0.5, "minImprovement": 0.01},
}


@contextmanager
def repository() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def assert_one_line_naming(error: FlywheelError, file: str) -> None:
    text = str(error)
    assert text.startswith(f"{file}:"), text
    assert "\n" not in text and "\r" not in text, text
    assert error.file == file


def load(content: bytes) -> SpecFile | SpecError:
    """``load_spec`` on ``content``: the spec, or the project's error (anything else fails)."""
    with repository() as root:
        path = root / SPEC
        path.parent.mkdir()
        path.write_bytes(content)
        try:
            return load_spec(path, root)
        except SpecError as error:
            assert_one_line_naming(error, SPEC)
            # YAML also breaks lines at \r, \x85, \u2028 and \u2029 (splitlines() at more)
            lines = len(content.decode("utf-8", "replace").splitlines()) + 1
            assert error.line is None or 1 <= error.line <= lines, (error.line, lines)
            return error


def read(content: bytes, task: TaskConfig) -> list[Document] | DataError:
    with repository() as root:
        path = root / DATA
        path.parent.mkdir()
        path.write_bytes(content)
        try:
            return read_dataset(path, DATA, task)
        except DataError as error:
            assert_one_line_naming(error, DATA)
            assert error.line is None or error.line >= 1
            return error


# --------------------------------------------------------------------------------------------
# Strategies

#: Characters that mean something to YAML, so random text reaches deep into the parser.
YAML_ALPHABET = string.ascii_letters[:6] + string.digits[:3] + " \t\n:-,[]{}&*!|>'\"#%@`?~.<=\\/"
yaml_ish_text = st.text(alphabet=YAML_ALPHABET, max_size=300)

scalars = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=30) | st.sampled_from(["MULTI_CLASS", "TRAIN", "v1", "data/x.csv",
                                                      "linear-svm", "../x", "a/b", "=1+1"]))
keys = st.sampled_from(["name", "task", "mode", "labels", "datasets", "path", "type", "recipe",
                        "algorithm", "C", "activeModel", "features", "colour"]) | st.text(
    max_size=10)
structures = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                          | st.dictionaries(keys, inner, max_size=5), max_leaves=30)


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one value somewhere in it replaced, removed, or a key added."""
    spec = yaml.safe_load(yaml.safe_dump(VALID_SPEC))  # a deep copy
    node: Any = spec
    while True:
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        key, child = draw(st.sampled_from(children))
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            node[key] = draw(structures)
        elif action == "remove" and isinstance(node, dict):
            del node[key]
        elif isinstance(node, dict):
            node[draw(keys)] = draw(structures)
        else:
            node.append(draw(structures))
        return spec


TASKS = [
    TaskConfig(mode="MULTI_CLASS", labels=["spam", "ham"]),
    TaskConfig(mode="MULTI_LABEL", labels=["a", "b", "c"]),
    TaskConfig(mode="MULTI_LABEL", labels=["a|x", "b"], label_delimiter=";"),
]
tasks = st.sampled_from(TASKS)
cells = st.text(max_size=40) | st.sampled_from(["spam", "ham", "a|b", "a;b", "=1+1", "@SUM(1)",
                                                "-", " ", '"', "\x00", "\ufeff"])
csv_rows = st.lists(st.lists(cells, max_size=4), max_size=8)
# Text that survives UTF-8 (no lone surrogates) and has something besides blanks and NULs.
document_texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                         min_size=1, max_size=80).filter(lambda text: bool(text.strip()))


def to_csv(rows: list[list[str]], lineterminator: str = "\r\n") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=lineterminator).writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------------------------
# The spec loader


@PROPERTY
@given(st.binary(max_size=2000))
@example(b"a: 2001-13-45\n")
@example(b"a: 0x" + b"f" * 5000 + b"\n")
@example(b"a: !!bool x\n")
@example(b"a: !!timestamp x\n")
@example(b"a: !!map x\n")
@example(b"\xff\xfe" + "name: demo\n".encode("utf-16-le"))
def test_spec_loader_on_arbitrary_bytes(content: bytes) -> None:
    load(content)


@PROPERTY
@given(yaml_ish_text)
@example("a: &a [*a]\n")
@example("? [a]\n: b\n")
@example("a: 1\n---\nb\n")
@example("%YAML 1.1\n---\na: b\n")
@example("name: !!str [1]\n")
def test_spec_loader_on_yaml_ish_text(text: str) -> None:
    load(text.encode("utf-8"))


@PROPERTY
@given(structures)
def test_spec_loader_on_any_structure_dumped_as_yaml(value: object) -> None:
    load(yaml.safe_dump(value, allow_unicode=True).encode("utf-8", "surrogatepass"))


@PROPERTY
@given(mutated_specs())
def test_spec_loader_on_a_valid_spec_with_one_change(spec: dict[str, Any]) -> None:
    result = load(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).encode(
        "utf-8", "surrogatepass"))
    if isinstance(result, SpecError) and result.field:
        # an error about a field names a field that is in the file, or a missing one's parent
        assert result.line is not None, str(result)


def test_the_unchanged_valid_spec_loads() -> None:
    result = load(yaml.safe_dump(VALID_SPEC).encode())
    assert isinstance(result, SpecFile), str(result)


# --------------------------------------------------------------------------------------------
# The CSV reader


@PROPERTY
@given(st.binary(max_size=2000), tasks)
@example(b"\xef\xbb\xbf", TASKS[0])
@example(b'spam,"unclosed\n', TASKS[0])
@example(b"spam,x\r\rham,y", TASKS[0])
def test_csv_reader_on_arbitrary_bytes(content: bytes, task: TaskConfig) -> None:
    read(content, task)


@PROPERTY
@given(csv_rows, tasks, st.sampled_from(["\r\n", "\n", "\r"]))
def test_csv_reader_on_csv_ish_rows(rows: list[list[str]], task: TaskConfig,
                                    lineterminator: str) -> None:
    read(to_csv(rows, lineterminator), task)


@st.composite
def valid_rows(draw: st.DrawFn, task: TaskConfig) -> list[tuple[frozenset[str], str]]:
    count = draw(st.integers(min_value=1, max_value=8))
    rows = []
    for _ in range(count):
        if task.mode.value == "MULTI_CLASS":
            labels = frozenset([draw(st.sampled_from(task.labels))])
        else:
            labels = frozenset(draw(st.lists(st.sampled_from(task.labels), min_size=1,
                                             unique=True)))
        rows.append((labels, draw(document_texts)))
    return rows


@PROPERTY
@given(st.data())
def test_csv_reader_reads_back_what_the_csv_module_wrote(data: st.DataObject) -> None:
    """Valid rows, written by the csv module in any quoting, read back exactly."""
    task = data.draw(tasks)
    rows = data.draw(valid_rows(task))
    cells = [[task.label_delimiter.join(sorted(labels)), text] for labels, text in rows]
    documents = read(to_csv(cells), task)
    assert not isinstance(documents, DataError), str(documents)
    assert [(d.labels, d.text) for d in documents] == rows
