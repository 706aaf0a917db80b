"""Tests for reconciler/adapters/yaml_edit.py: edits touch only the bytes of the edited node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.adapters.yaml_edit import (
    EditError,
    append_item,
    delete_item,
    delete_key,
    set_value,
)

#: A verbatim copy of specs/debian-sections.yaml, the style every edit must keep.
DEBIAN = """\
# A MULTI_CLASS flywheel: which Debian archive section a package belongs to, from its
# description. Real text, real labels: see data/README.md.
apiVersion: flywheel-reconciler/v1
name: debian-sections
description: Debian package descriptions labelled with the archive section they live in.
task:
  languageCode: en
  mode: MULTI_CLASS
  labels: [database, editors, games, graphics, mail, math, net, science, sound, video]
datasets:
  - name: sections-2024-01
    type: TRAIN
    path: data/debian-sections/train-v1.csv
  - name: sections-2024-04
    type: TRAIN
    path: data/debian-sections/train-v2.csv
  - name: sections-2024-07
    type: TRAIN
    path: data/debian-sections/train-v3.csv
  - name: sections-test
    type: TEST
    path: data/debian-sections/test.csv
recipe:
  algorithm: linear-svm
  features:
    ngramRange: [1, 2]
    charNgramRange: [2, 5]
    minDf: 2
  C: 0.5
promotion:
  minF1: 0.70
  minImprovement: 0.005
"""

Edit = Callable[[str], str]
P = pytest.param


def test_the_fixture_is_the_real_spec() -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "debian-sections.yaml"
    assert spec.read_text(encoding="utf-8") == DEBIAN


EDITS = [
    P("activeModel: v3  # pinned\nname: x\n", lambda t: set_value(t, ("activeModel",), "v4"),
      "activeModel: v4  # pinned\nname: x\n", id="scalar-keeps-its-comment"),
    P("a: 'old'  # c\nb: \"x\"\n", lambda t: set_value(t, ("b",), "new"),
      "a: 'old'  # c\nb: new\n", id="quoted-scalar"),
    P('a: "x\n  y"\nb: 1\n', lambda t: set_value(t, ("a",), 2),
      "a: 2\nb: 1\n", id="multi-line-quoted-scalar"),
    P("a: |\n  line\n  # content, not a comment\n\n# about b\nb: 1\n",
      lambda t: set_value(t, ("a",), "short"),
      "a: short\n\n# about b\nb: 1\n", id="block-scalar-whole-span"),
    P("a:\nb: 2\n", lambda t: set_value(t, ("a",), 1), "a: 1\nb: 2\n", id="empty-value"),
    P("a: 1\n", lambda t: set_value(t, ("b",), 2), "a: 1\nb: 2\n", id="new-key-final-newline"),
    P("a: 1", lambda t: set_value(t, ("b",), 2), "a: 1\nb: 2", id="new-key-no-final-newline"),
    P("a: 1  # one\n\n# the end\n", lambda t: set_value(t, ("b",), 2),
      "a: 1  # one\nb: 2\n\n# the end\n", id="new-key-before-trailing-comments"),
    P("promotion:\n  minImprovement: 0.005  # tiny\n# next\nrecipe: x\n",
      lambda t: set_value(t, ("promotion", "minF1"), 0.7),
      "promotion:\n  minImprovement: 0.005  # tiny\n  minF1: 0.7\n# next\nrecipe: x\n",
      id="new-nested-key"),
    P("a: 1\n", lambda t: set_value(t, ("b",), {"c": [1, {"d": "yes"}]}),
      "a: 1\nb:\n  c:\n    - 1\n    - d: 'yes'\n", id="new-key-block-value"),
    P("task:\n  labels: [a, b]  # few\n  mode: X\n",
      lambda t: set_value(t, ("task", "labels"), ["a", "b", "c"]),
      "task:\n  labels:  # few\n    - a\n    - b\n    - c\n  mode: X\n",
      id="flow-list-becomes-block"),
    P("recipe:  # how\n  algorithm: svm\n  C: 0.5\n# promo\npromotion: 1\n",
      lambda t: set_value(t, ("recipe",), "none"),
      "recipe: none  # how\n# promo\npromotion: 1\n", id="block-mapping-becomes-scalar"),
    P("recipe:\n  algorithm: svm\n  # inside\n  C: 0.5\n\n# promo\npromotion: 1\n",
      lambda t: set_value(t, ("recipe",), {"algorithm": "nb", "alpha": 1}),
      "recipe:\n  algorithm: nb\n  alpha: 1\n\n# promo\npromotion: 1\n",
      id="block-mapping-replaced"),
    P("l:\n- x: 1\n  y: 2\n- 3\n", lambda t: set_value(t, ("l", 0), {"z": [1]}),
      "l:\n- z:\n  - 1\n- 3\n", id="item-replaced-indentless-style"),
    P("l:\n  - x: 1\n    y: 2  # why\n", lambda t: set_value(t, ("l", 0, "y"), []),
      "l:\n  - x: 1\n    y: []  # why\n", id="nested-in-item-empty-list"),
    P("a: 1\nb:\n  x: 1\n  y: 2\n# about c\nc: 3\n", lambda t: delete_key(t, ("b",)),
      "a: 1\n# about c\nc: 3\n", id="delete-middle-key"),
    P("a: 1\n# about b\nb: 2  # two\nc: 3\n", lambda t: delete_key(t, ("b",)),
      "a: 1\n# about b\nc: 3\n", id="delete-key-comment-above-stays"),
    P("a: 1\n# c\nb: 2", lambda t: delete_key(t, ("b",)), "a: 1\n# c", id="delete-last-no-eol"),
    P("p:\n  minF1: 0.7\n  minImprovement: 0.005\nq: 1\n", lambda t: delete_key(t, ("p", "minF1")),
      "p:\n  minImprovement: 0.005\nq: 1\n", id="delete-nested-key"),
    P("l:\n  - a  # first\n  - b\n  - c\n", lambda t: delete_item(t, ("l",), 0),
      "l:\n  - b\n  - c\n", id="delete-first-item"),
    P("l:\n  - name: a\n    x: 1\n  # about b\n  - name: b\n    x: 2\n  - c\n",
      lambda t: delete_item(t, ("l",), 1),
      "l:\n  - name: a\n    x: 1\n  # about b\n  - c\n", id="delete-middle-item"),
    P("l:\n- a\n- b\n\n# end\n", lambda t: delete_item(t, ("l",), 1),
      "l:\n- a\n\n# end\n", id="delete-last-item"),
    P("l:\n- a\n- b", lambda t: delete_item(t, ("l",), 1), "l:\n- a", id="delete-last-item-no-eol"),
    P("l:\n- a  # one\n\n# end\n", lambda t: append_item(t, ("l",), "b"),
      "l:\n- a  # one\n- b\n\n# end\n", id="append-indentless"),
    P("l:\n  - a", lambda t: append_item(t, ("l",), {"k": "1.0"}),
      "l:\n  - a\n  - k: '1.0'", id="append-no-final-newline"),
    P("a:\n- x\nb: 1\n", lambda t: append_item(t, ("c",), "y"),
      "a:\n- x\nb: 1\nc:\n- y\n", id="create-sequence-indentless-style"),
    P("p:\n  q: 1\n", lambda t: append_item(t, ("p", "l"), "y"),
      "p:\n  q: 1\n  l:\n    - y\n", id="create-nested-sequence-default-style"),
    P("a: 1\r\nb:\r\n  - x\r\n", lambda t: append_item(t, ("b",), "y"),
      "a: 1\r\nb:\r\n  - x\r\n  - y\r\n", id="crlf-append"),
    P("a: 1\r\nb:\r\n  - x\r\n", lambda t: set_value(t, ("c",), {"k": [1]}),
      "a: 1\r\nb:\r\n  - x\r\nc:\r\n  k:\r\n    - 1\r\n", id="crlf-new-key"),
    P("a: 1\r\nb: 2  # x\r\nc: 3\r\n", lambda t: delete_key(t, ("b",)),
      "a: 1\r\nc: 3\r\n", id="crlf-delete-key"),
    P("a: 1\r\nb: 2", lambda t: delete_key(t, ("b",)), "a: 1", id="crlf-delete-last-no-eol"),
    P("a: é\n", lambda t: set_value(t, ("ü",), "ünïcødé — 😀"),
      "a: é\nü: ünïcødé — 😀\n", id="unicode"),
]


@pytest.mark.parametrize(("text", "edit", "expected"), EDITS)
def test_an_edit_gives_exactly_this_text(text: str, edit: Edit, expected: str) -> None:
    assert edit(text) == expected


@pytest.mark.parametrize(("value", "written"), [
    P("yes", "'yes'", id="yes"), P("1.0", "'1.0'", id="float-like"), P("", "''", id="empty"),
    P("null", "'null'", id="null"), P("a: b", "'a: b'", id="colon-space"),
    P("x # y", "'x # y'", id="hash"), P("#x", "'#x'", id="leading-hash"),
    P("2024-01-01", "'2024-01-01'", id="date-like"), P("a\nb", '"a\\nb"', id="newline"),
    P(None, "null", id="none"), P(True, "true", id="bool"), P(0.005, "0.005", id="float"),
])
def test_values_are_quoted_so_they_read_back(value: object, written: str) -> None:
    new = set_value("k: old  # keep\n", ("k",), value)
    assert new == f"k: {written}  # keep\n"
    assert yaml.safe_load(new) == {"k": value}


def test_appending_a_dataset_keeps_every_line_of_the_spec_in_order() -> None:
    item = {"name": "sections-2024-10", "type": "TRAIN",
            "path": "data/debian-sections/train-v4.csv"}
    new = append_item(DEBIAN, ("datasets",), item)
    tail = ("    path: data/debian-sections/test.csv\n"
            "  - name: sections-2024-10\n    type: TRAIN\n"
            "    path: data/debian-sections/train-v4.csv\nrecipe:\n")
    assert tail in new
    assert _is_subsequence(DEBIAN.splitlines(), new.splitlines())
    assert yaml.safe_load(new)["datasets"][-1] == item


def test_editing_the_spec_touches_one_line() -> None:
    new = set_value(DEBIAN, ("promotion", "minF1"), 0.75)
    assert new == DEBIAN.replace("  minF1: 0.70\n", "  minF1: 0.75\n")
    new = set_value(DEBIAN, ("datasets", 3, "type"), "TRAIN")
    assert new == DEBIAN.replace("    type: TEST\n", "    type: TRAIN\n")
    new = set_value(DEBIAN, ("task", "minLength"), 3)  # after a flow list, at the key's indent
    assert new == DEBIAN.replace("sound, video]\n", "sound, video]\n  minLength: 3\n")
    new = set_value(DEBIAN, ("recipe", "features"), {"ngramRange": [1, 3]})
    assert new == DEBIAN.replace(
        "    ngramRange: [1, 2]\n    charNgramRange: [2, 5]\n    minDf: 2\n",
        "    ngramRange:\n      - 1\n      - 3\n")


REFUSALS = [
    P(lambda: append_item(DEBIAN, ("task", "labels"), "x"), "written in flow style",
      id="append-to-flow-list"),
    P(lambda: delete_item(DEBIAN, ("recipe", "features", "ngramRange"), 0),
      "written in flow style", id="delete-from-flow-list"),
    P(lambda: set_value("a: {x: 1}\n", ("a", "y"), 2), "written in flow style",
      id="insert-into-flow-mapping"),
    P(lambda: set_value("a: [1, 2]\n", ("a", 0), [3]), "written in flow style",
      id="block-value-into-flow-list"),
    P(lambda: set_value("base: &b\n  x: 1\nother: *b\n", ("other", "x"), 2),
      "anchor, alias or tag", id="alias-parent"),
    P(lambda: set_value("base: &b\n  x: 1\nother: *b\n", ("base", "x"), 2),
      "anchor, alias or tag", id="anchor-parent"),
    P(lambda: set_value("a: !!str 5\n", ("a",), "6"), "anchor, alias or tag", id="tag"),
    P(lambda: set_value("b: &b {x: 1}\na:\n  <<: *b\n", ("a", "y"), 1), "merge key",
      id="merge-key"),
    P(lambda: set_value(DEBIAN, ("nope", "x"), 1), "nope is not in the document",
      id="unknown-parent"),
    P(lambda: delete_key(DEBIAN, ("zzz",)), "zzz is not in the document", id="unknown-key"),
    P(lambda: delete_item(DEBIAN, ("datasets",), 9), "datasets[9] is not in the document",
      id="index-out-of-range"),
    P(lambda: delete_item(DEBIAN, ("datasets",), -1), "datasets[-1] is not in the document",
      id="negative-index"),
    P(lambda: set_value(DEBIAN, ("datasets", "x"), 1), "datasets.x is not in the document",
      id="key-on-a-list"),
    P(lambda: append_item(DEBIAN, ("name",), 1), "name is not a list", id="append-to-scalar"),
    P(lambda: delete_key(DEBIAN, ("datasets", 0, "name")), "shares its line with a '- '",
      id="delete-first-key-of-compact-item"),
    P(lambda: delete_item("l:\n- a\n", ("l",), 0), "empty list", id="delete-only-item"),
    P(lambda: delete_key("a: 1\n", ("a",)), "empty mapping", id="delete-only-key"),
    P(lambda: set_value("a: 1\n---\nb: 2\n", ("a",), 2), "not one valid YAML document",
      id="two-documents"),
    P(lambda: set_value("a: [\n", ("a",), 2), "not one valid YAML document", id="malformed"),
    P(lambda: set_value("- a\n", (0,), 2), "root is not a mapping", id="root-is-a-list"),
    P(lambda: set_value("a: " + "x" * 1_000_001 + "\n", ("a",), 2), "over 1000000 bytes",
      id="too-big"),
    P(lambda: set_value("a: |+\n  x\n\n", ("b",), 1), "would change more than b",
      id="verification-catches-kept-blank-lines"),
    P(lambda: set_value(DEBIAN, (), 1), "root mapping cannot be replaced", id="root"),
]


@pytest.mark.parametrize(("edit", "message"), REFUSALS)
def test_an_unsafe_edit_is_refused_in_one_line(edit: Callable[[], str], message: str) -> None:
    with pytest.raises(EditError, match=message.replace("[", r"\[").replace("]", r"\]")) as exc:
        edit()
    assert "\n" not in str(exc.value)


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(line in it for line in small)


# -- property: random specs-like documents with comments -----------------------------------

_KEYS = st.text("abcdefgxyz", min_size=1, max_size=5)
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=8)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                     st.floats(allow_nan=False, allow_infinity=False, width=32), _TEXT,
                     st.sampled_from(["yes", "no", "1.0", "null", "~", "a: b", "#c", "v1"]))
_ITEMS = st.dictionaries(_KEYS, _SCALARS, min_size=1, max_size=3)
_VALUES = st.one_of(_SCALARS, st.lists(_ITEMS, min_size=1, max_size=3))
_DOCS = st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=5)


class _Indented(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _with_comments(text: str, where: list[int]) -> tuple[str, list[str]]:
    """Put a comment line (at the next line's indentation) before some lines."""
    lines, out, comments = text.splitlines(), [], []
    for i, line in enumerate(lines):
        if i in where:
            comment = " " * (len(line) - len(line.lstrip())) + f"# comment {i}"
            out.append(comment)
            comments.append(comment)
        out.append(line)
    return "\n".join(out) + "\n", comments


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_DOCS, indented=st.booleans(), where=st.lists(st.integers(0, 40), max_size=8),
       choice=st.data())
def test_random_edits_read_back_as_intended(data: dict[str, Any], indented: bool,
                                            where: list[int], choice: st.DataObject) -> None:
    dumped = yaml.dump(data, Dumper=_Indented if indented else yaml.SafeDumper,
                       default_flow_style=False, sort_keys=False, allow_unicode=True,
                       width=10**6)
    text, comments = _with_comments(dumped, where)
    expected = yaml.safe_load(text)
    assert expected == data
    key = choice.draw(st.sampled_from([*data, "newkey"]))
    old = data.get(key)
    if isinstance(old, list) and choice.draw(st.booleans()):
        item = choice.draw(_ITEMS)
        new = append_item(text, (key,), item)
        old.append(item)
    elif isinstance(old, list):
        index = choice.draw(st.integers(0, len(old) - 1))
        field = choice.draw(st.sampled_from([*old[index], "newfield"]))
        value = choice.draw(_SCALARS)
        new = set_value(text, (key, index, field), value)
        old[index][field] = value
    else:
        value = choice.draw(_VALUES)
        new = set_value(text, (key,), value)
        data[key] = value
    assert yaml.safe_load(new) == data
    assert _is_subsequence(comments, new.splitlines())
