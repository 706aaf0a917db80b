"""Tests for the spec loader: safe YAML -> FlywheelSpec, errors naming file, line and field.

Every bad input must give ONE SpecError whose str() is ``file:line: field: message``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from reconciler.adapters import loader as loader_module
from reconciler.adapters import safe_yaml
from reconciler.adapters.loader import MAX_SPEC_BYTES, load_spec, load_specs, parse_yaml
from reconciler.core.spec import (
    ComplementNbRecipe,
    DatasetType,
    LinearSvmRecipe,
    LogisticRegressionRecipe,
    Mode,
)
from reconciler.errors import FlywheelError, SpecError

# Line numbers of BASE, referred to by the tables below:
#  1 apiVersion   2 name   3 task   4 mode   5 labels   6 datasets   7 - name   8 type
#  9 path   10 recipe   11 algorithm   12 C
BASE = """\
apiVersion: flywheel-reconciler/v1
name: demo
task:
  mode: MULTI_CLASS
  labels: [spam, ham]
datasets:
  - name: d1
    type: TRAIN
    path: data/train.csv
recipe:
  algorithm: linear-svm
  C: 1.0
"""
BASE_LINES = BASE.count("\n")
SECOND_DATASET = """\
  - name: d2
    type: TEST
    path: data/test.csv
"""
SPEC_FILE = "specs/x.yaml"

NOT_CHECKED = object()  # a sentinel: this attribute is not asserted by the case


def edit(old: str, new: str, text: str = BASE) -> str:
    """``text`` with the single occurrence of ``old`` replaced (so a typo in a case fails)."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def in_task(line: str) -> str:
    """BASE with ``line`` added to ``task`` right after ``mode`` (so it is line 5)."""
    return edit("  mode: MULTI_CLASS", "  mode: MULTI_CLASS\n  " + line)


def with_second_dataset(dataset: str = SECOND_DATASET) -> str:
    """BASE with another dataset after the first one (its lines are 10-12)."""
    return edit("recipe:\n", dataset + "recipe:\n")


def write_spec(root: Path, content: str | bytes, name: str = "x.yaml") -> Path:
    path = root / "specs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_error(root: Path, content: str | bytes) -> SpecError:
    path = write_spec(root, content)
    with pytest.raises(SpecError) as info:
        load_spec(path, root)
    return info.value


@dataclass(frozen=True)
class Bad:
    """A spec that must be refused, and where the error must point."""

    id: str
    text: str | bytes
    line: int | object | None
    field: str | object | None
    message: str  # a substring of the message


def check(root: Path, case: Bad) -> SpecError:
    error = load_error(root, case.text)
    assert type(error) is SpecError
    assert isinstance(error, FlywheelError)
    assert error.file == SPEC_FILE
    if case.line is not NOT_CHECKED:
        assert error.line == case.line, str(error)
    if case.field is not NOT_CHECKED:
        assert error.field == case.field, str(error)
    assert case.message in error.message, str(error)
    text = str(error)
    assert "\n" not in text, "an error is ONE line"
    assert text.startswith(SPEC_FILE + (f":{error.line}: " if error.line else ": "))
    if error.field:
        assert f": {error.field}: " in text
    return error


def params(*cases: Bad):
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


# --------------------------------------------------------------------------------------------
# Valid specs


def test_valid_spec_loads_with_lines_and_relative_path(tmp_path: Path) -> None:
    spec_file = load_spec(write_spec(tmp_path, BASE), tmp_path)

    assert spec_file.path == SPEC_FILE
    spec = spec_file.spec
    assert spec.name == "demo"
    assert spec.task.mode is Mode.MULTI_CLASS
    assert spec.task.labels == ["spam", "ham"]
    assert [(d.name, d.type, d.path) for d in spec.datasets] == [
        ("d1", DatasetType.TRAIN, "data/train.csv")
    ]
    assert isinstance(spec.recipe, LinearSvmRecipe)
    assert spec.recipe.c == 1.0
    assert spec.active_model is None
    assert spec.promotion is None
    assert spec_file.line_of("datasets", 0, "path") == 9
    assert spec_file.line_of("recipe", "C") == 12
    assert spec_file.line_of("task") == 3
    # an unknown deeper location falls back to its deepest known ancestor
    assert spec_file.line_of("datasets", 0, "nope") == 7


@pytest.mark.parametrize(
    ("recipe", "cls", "figure"),
    [
        ("recipe:\n  algorithm: linear-svm\n  C: 0.5\n", LinearSvmRecipe, ("c", 0.5)),
        ("recipe:\n  algorithm: logistic-regression\n  C: 3\n", LogisticRegressionRecipe,
         ("c", 3.0)),
        ("recipe:\n  algorithm: complement-nb\n  alpha: 0.1\n", ComplementNbRecipe,
         ("alpha", 0.1)),
        ("", LinearSvmRecipe, ("c", 1.0)),
        ("recipe:\n  C: 2\n", LinearSvmRecipe, ("c", 2.0)),
    ],
    ids=["linear-svm", "logistic-regression", "complement-nb", "recipe-omitted-defaults-svm",
         "algorithm-omitted-defaults-svm"],
)
def test_each_recipe_loads(tmp_path: Path, recipe: str, cls: type, figure: tuple) -> None:
    text = BASE.split("recipe:\n")[0] + recipe
    spec = load_spec(write_spec(tmp_path, text), tmp_path).spec
    assert type(spec.recipe) is cls
    assert getattr(spec.recipe, figure[0]) == figure[1]


@pytest.mark.parametrize(
    ("text", "check_spec"),
    [
        (edit("data/train.csv", "data/./sub/../train.csv"),
         lambda s: s.datasets[0].path == "data/train.csv"),
        (BASE + "activeModel: v12\n", lambda s: s.active_model == "v12"),
        (BASE + "promotion:\n  minF1: 0.5\n  minImprovement: -0.1\n",
         lambda s: (s.promotion.min_f1, s.promotion.min_improvement) == (0.5, -0.1)),
        (edit("[spam, ham]", "[spam, 'a|b']"), lambda s: "a|b" in s.task.labels),
        (edit("  mode: MULTI_CLASS", "  mode: MULTI_LABEL\n  labelDelimiter: ';'")
         .replace("[spam, ham]", "['a|b', c]"),
         lambda s: s.task.label_delimiter == ";" and s.task.labels == ["a|b", "c"]),
        (with_second_dataset(), lambda s: [d.name for d in s.test_datasets] == ["d2"]),
        ("\ufeff" + BASE, lambda s: s.name == "demo"),
        (BASE.replace("\n", "\r\n"), lambda s: s.name == "demo"),
    ],
    ids=[
        "path-normalised",
        "activeModel-v12",
        "negative-minImprovement",
        "multi-class-label-may-contain-pipe",
        "multi-label-other-delimiter",
        "train-and-test-datasets",
        "utf8-bom",
        "crlf-line-ends",
    ],
)
def test_valid_variants_load(tmp_path: Path, text: str, check_spec) -> None:
    spec = load_spec(write_spec(tmp_path, text), tmp_path).spec
    assert check_spec(spec)


def test_file_of_exactly_the_size_limit_loads(tmp_path: Path) -> None:
    padding = MAX_SPEC_BYTES - len(BASE.encode()) - 2
    text = BASE + "#" + "x" * padding + "\n"
    assert len(text.encode()) == MAX_SPEC_BYTES
    assert load_spec(write_spec(tmp_path, text), tmp_path).spec.name == "demo"


def test_the_repository_example_specs_load() -> None:
    root = Path(__file__).resolve().parents[2]
    loaded, errors = load_specs(root)
    assert errors == []
    assert loaded, "the repository ships example specs"
    assert all(s.path.startswith("specs/") for s in loaded)


def test_parse_yaml_returns_values_and_key_lines() -> None:
    data, lines = parse_yaml("a:\n  b: 1\n  c:\n    - x\n    - y: 2\n", "f.yaml")
    assert data == {"a": {"b": 1, "c": ["x", {"y": 2}]}}
    assert lines[("a",)] == 1
    assert lines[("a", "b")] == 2
    assert lines[("a", "c", 1, "y")] == 5


# --------------------------------------------------------------------------------------------
# Malformed YAML and YAML-level limits


@params(
    Bad("unclosed-flow-sequence", edit("[spam, ham]", "[spam, ham"), NOT_CHECKED, None,
        "malformed YAML"),
    Bad("extra-closing-bracket", edit("[spam, ham]", "[spam, ham]]"), 5, None, "malformed YAML"),
    Bad("tab-indent", edit("  mode: MULTI_CLASS", "\tmode: MULTI_CLASS"), 4, None,
        "malformed YAML"),
    Bad("bad-indent", edit("    type: TRAIN", "      type: TRAIN"), 8, None, "malformed YAML"),
    Bad("undefined-alias", edit("name: demo", "name: *nothing"), 2, None, "undefined alias"),
)
def test_malformed_yaml_names_the_line(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


def test_unclosed_flow_sequence_line_is_at_or_after_the_opening(tmp_path: Path) -> None:
    error = load_error(tmp_path, edit("[spam, ham]", "[spam, ham"))
    assert error.line is not None and error.line >= 5


@params(
    Bad("duplicate-top-level-key", BASE + "name: other\n", 13, "name", "duplicate key 'name'"),
    Bad("duplicate-nested-key", in_task("mode: X"),
        5, "task.mode", "duplicate key 'mode'"),
)
def test_duplicate_keys_are_refused_naming_line_and_field(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


@params(
    Bad("second-document", BASE + "---\nname: other\n", BASE_LINES + 2, None,
        "several YAML documents"),
    Bad("python-object-apply-tag",
        BASE + "x: !!python/object/apply:os.system ['touch pwned']\n", BASE_LINES + 1,
        NOT_CHECKED, "not allowed"),
    Bad("python-name-tag-as-value", edit("name: demo", "name: !!python/name:os.system ''"),
        2, NOT_CHECKED, "not allowed"),
    Bad("custom-local-tag", edit("C: 1.0", "C: !money 1.0"), 12, NOT_CHECKED, "not allowed"),
    Bad("binary-tag", BASE + "blob: !!binary aGk=\n", BASE_LINES + 1, NOT_CHECKED,
        "not allowed"),
    Bad("merge-key", BASE + "extra: &e {a: 1}\nmore:\n  <<: *e\n", BASE_LINES + 3, NOT_CHECKED,
        "merge keys"),
    Bad("complex-key", BASE + "? [a, b]\n: 1\n", BASE_LINES + 1, NOT_CHECKED, "plain scalars"),
    Bad("empty-file", "", 1, None, "empty"),
    Bad("only-a-comment", "# nothing here\n", 1, None, "empty"),
    Bad("top-level-list", "- name: demo\n", 1, None, "YAML mapping"),
    Bad("top-level-scalar", "demo\n", 1, None, "YAML mapping"),
    Bad("non-utf8", BASE.encode().replace(b"demo", b"d\xe9mo"), 2, None, "UTF-8"),
    Bad("non-utf8-late", BASE.encode() + b"description: caf\xe9\n", BASE_LINES + 1, None,
        "UTF-8"),
    Bad("utf16", BASE.encode("utf-16"), 1, None, "UTF-8"),
)
def test_yaml_level_refusals(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


def test_python_tag_is_refused_without_running_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = BASE + f"x: !!python/object/apply:os.system ['touch {marker}']\n"
    load_error(tmp_path, text)
    assert not marker.exists()


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [5, 9], ids=["9^5-nodes", "9^9-nodes"])
def test_billion_laughs_is_refused_quickly(tmp_path: Path, levels: int) -> None:
    started = time.perf_counter()
    error = load_error(tmp_path, billion_laughs(levels))
    assert time.perf_counter() - started < 2.0
    assert "too many YAML nodes" in error.message
    assert error.file == SPEC_FILE
    assert error.line is not None


#: Every parser PyYAML may bring (the dependency range allows builds with and without libyaml,
#: and libyaml versions with and without a nesting limit of their own): the nesting errors are
#: the project's own, whichever one reads the file.
PARSERS = [pytest.param(yaml.SafeLoader, id="pure-python")] + (
    [pytest.param(yaml.CSafeLoader, id="libyaml")] if hasattr(yaml, "CSafeLoader") else []
)


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    monkeypatch.setattr(safe_yaml, "_Loader", request.param)
    loader_module._PARSED.clear()
    return request.param


@pytest.mark.usefixtures("parser")
def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, "a: &a [*a]\n")
    assert "nested deeper" in error.message
    assert error.line == 1


def block_nesting(depth: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "leaf\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (block_nesting(40), 33),
        ("a: " + "[" * 100 + "]" * 100 + "\n", 1),
        ("a: " + "{b: " * 100 + "1" + "}" * 100 + "\n", 1),
    ],
    ids=["block-mappings-40", "flow-sequences-100", "flow-mappings-100"],
)
@pytest.mark.usefixtures("parser")
def test_deep_nesting_is_refused(tmp_path: Path, text: str, line: int) -> None:
    error = load_error(tmp_path, text)
    assert "nested deeper" in error.message
    assert error.line == line


@pytest.mark.parametrize("depth", [1_000, 20_000], ids=["depth-1000", "depth-20000"])
@pytest.mark.usefixtures("parser")
def test_very_deep_nesting_in_a_small_file_is_a_spec_error_not_a_crash(
    tmp_path: Path, depth: int
) -> None:
    # ~2 KB / ~40 KB files, well under the size limit. PyYAML's composer recurses once per level,
    # so this must be refused before composing (or the RecursionError translated).
    text = "a: " + "[" * depth + "]" * depth + "\n"
    assert len(text.encode()) < MAX_SPEC_BYTES
    error = load_error(tmp_path, text)
    assert error.file == SPEC_FILE
    assert error.line == 1
    assert error.message == "nested deeper than 32 levels"


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    text = BASE + "#" * (MAX_SPEC_BYTES - len(BASE)) + "\n"
    assert len(text.encode()) == MAX_SPEC_BYTES + 1
    error = load_error(tmp_path, text)
    assert error.line is None
    assert str(MAX_SPEC_BYTES) in error.message
    assert str(error) == f"{SPEC_FILE}: file is {MAX_SPEC_BYTES + 1} bytes; the limit is " \
                         f"{MAX_SPEC_BYTES} (set FLYWHEEL_MAX_SPEC_BYTES to raise it)"


# --------------------------------------------------------------------------------------------
# Validation: every error names the field and its line


def test_error_string_format_is_file_line_field_message(tmp_path: Path) -> None:
    error = load_error(tmp_path, edit("C: 1.0", "C: -1"))
    assert str(error) == "specs/x.yaml:12: recipe.C: Input should be greater than 0 (got -1)"
    assert error.kind == "SpecError"
    assert error.flywheel is None or error.flywheel == "demo"


@params(
    Bad("top-level", BASE + "colour: red\n", BASE_LINES + 1, "colour", "unknown field"),
    Bad("in-task", in_task("lables: [a]"), 5,
        "task.lables", "unknown field"),
    Bad("in-dataset", edit("    type: TRAIN", "    type: TRAIN\n    size: 3"), 9,
        "datasets[0].size", "unknown field"),
    Bad("in-second-dataset",
        with_second_dataset(SECOND_DATASET.replace("TEST", "TEST\n    kind: x")), 12,
        "datasets[1].kind", "unknown field"),
    Bad("in-recipe-features", BASE + "  features:\n    minDF: 2\n", BASE_LINES + 2,
        "recipe.features.minDF", "unknown field"),
    Bad("snake-case-spelling", in_task("language_code: en"),
        5, "task.language_code", "unknown field"),
    Bad("alpha-on-linear-svm", edit("C: 1.0", "alpha: 0.3"), 12, "recipe.alpha",
        "unknown field"),
    Bad("C-on-complement-nb", edit("linear-svm", "complement-nb"), 12, "recipe.C",
        "unknown field"),
    Bad("alpha-on-logistic-regression",
        edit("C: 1.0", "C: 1.0\n  alpha: 1").replace("linear-svm", "logistic-regression"),
        13, "recipe.alpha", "unknown field"),
)
def test_unknown_fields_are_refused(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


@params(
    Bad("labels-not-a-list", edit("[spam, ham]", "spam"), 5, "task.labels", "valid list"),
    Bad("int-field-given-text",
        in_task("minDocumentsPerLabel: lots"), 5,
        "task.minDocumentsPerLabel", "valid integer"),
    Bad("float-field-given-text", edit("C: 1.0", "C: high"), 12, "recipe.C", "valid number"),
    Bad("C-zero", edit("C: 1.0", "C: 0"), 12, "recipe.C", "greater than 0"),
    Bad("name-is-a-number", edit("name: demo", "name: 123"), 2, "name", "valid string"),
    Bad("mode-wrong-case", edit("MULTI_CLASS", "multi_class"), 4, "task.mode",
        "'MULTI_CLASS' or 'MULTI_LABEL'"),
    Bad("dataset-type-unknown", edit("TRAIN", "VALIDATE"), 8, "datasets[0].type",
        "'TRAIN' or 'TEST'"),
    Bad("datasets-a-mapping", edit(
        "  - name: d1\n    type: TRAIN\n    path: data/train.csv\n",
        "  name: d1\n"), 6, "datasets", "valid list"),
    Bad("one-label-only", edit("[spam, ham]", "[spam]"), 5, "task.labels", "at least 2"),
    Bad("language-unknown", in_task("languageCode: xx"),
        5, "task.languageCode", "Input should be"),
    Bad("ngram-range-reversed", BASE + "  features:\n    ngramRange: [3, 1]\n", BASE_LINES + 2,
        "recipe.features.ngramRange", "low <= high"),
    Bad("holdout-fraction-one", BASE + "  holdoutFraction: 1\n", BASE_LINES + 1,
        "recipe.holdoutFraction", "less than 1"),
    Bad("minF1-above-one", BASE + "promotion:\n  minF1: 1.5\n", BASE_LINES + 2,
        "promotion.minF1", "less than or equal to 1"),
    Bad("wrong-apiVersion", edit("flywheel-reconciler/v1", "flywheel-reconciler/v2"), 1,
        "apiVersion", "flywheel-reconciler/v1"),
    Bad("unknown-algorithm", edit("linear-svm", "random-forest"), 10, "recipe",
        "does not match any of the expected tags"),
)
def test_wrong_types_and_values(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


@params(
    Bad("name", edit("name: demo\n", ""), 1, "name", "required field is missing"),
    Bad("task", edit("task:\n  mode: MULTI_CLASS\n  labels: [spam, ham]\n", ""), 1, "task",
        "required field is missing"),
    Bad("task.mode", edit("  mode: MULTI_CLASS\n", ""), 3, "task.mode",
        "required field is missing"),
    Bad("task.labels", edit("  labels: [spam, ham]\n", ""), 3, "task.labels",
        "required field is missing"),
    Bad("datasets[0].type", edit("    type: TRAIN\n", ""), 7, "datasets[0].type",
        "required field is missing"),
    Bad("datasets[0].path", edit("    path: data/train.csv\n", ""), 7, "datasets[0].path",
        "required field is missing"),
)
def test_missing_required_fields(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


def test_several_errors_are_one_line_with_a_count(tmp_path: Path) -> None:
    text = edit("name: demo", "name: -bad").replace("C: 1.0", "C: -1")
    error = load_error(tmp_path, text)
    assert error.field == "name"
    assert error.line == 2
    assert str(error).endswith("(and 1 more problem in this file, at line 12)")
    assert "\n" not in str(error)


def test_every_spec_error_is_listed_in_file_order_with_its_line(tmp_path: Path) -> None:
    # four mistakes, one run: each named with its own line and field
    text = (in_task("lables: [a]").replace("name: demo", "name: -bad")
            .replace("C: 1.0", "C: -1") + "promotion:\n  minf1: 0.7\n")
    error = load_error(tmp_path, text)
    lines = error.lines()
    assert lines[0].startswith(f"{SPEC_FILE}:2: name: String should match pattern")
    assert lines[0].endswith(f"(and 3 more problems in this file, at lines 5, 13, "
                             f"{BASE_LINES + 3})")
    assert lines[1:] == [
        f"{SPEC_FILE}:5: task.lables: unknown field; did you mean 'labels'?",
        f"{SPEC_FILE}:13: recipe.C: Input should be greater than 0 (got -1)",
        f"{SPEC_FILE}:{BASE_LINES + 3}: promotion.minf1: unknown field; did you mean 'minF1'?",
    ]


def test_spec_errors_beyond_the_listed_ones_are_counted(tmp_path: Path) -> None:
    extra = "".join(f"x{i}: 1\n" for i in range(25))
    error = load_error(tmp_path, BASE + extra)
    lines = error.lines()
    assert len(lines) == 21  # 20 listed, then the count of the others
    assert lines[-1] == f"{SPEC_FILE}: … and 5 more problems in this file"
    assert str(error).endswith(" … and 5 more)")


@params(
    Bad("minF1-in-lower-case", BASE + "promotion:\n  minf1: 0.7\n", BASE_LINES + 2,
        "promotion.minf1", "unknown field; did you mean 'minF1'?"),
    Bad("snake-case-in-task", in_task("min_documents_per_label: 3"), 5,
        "task.min_documents_per_label", "did you mean 'minDocumentsPerLabel'?"),
    Bad("misspelt-in-a-dataset", edit("    type: TRAIN", "    type: TRAIN\n    pth: x"), 9,
        "datasets[0].pth", "did you mean 'path'?"),
    Bad("member-of-the-recipe-union", edit("C: 1.0", "C: 1.0\n  maxIter: 9\n  clasWeight: x"),
        14, "recipe.clasWeight", "did you mean 'classWeight'?"),
    Bad("alpha-of-complement-nb", edit("linear-svm", "complement-nb").replace("C: 1.0",
                                                                             "alhpa: 1"),
        12, "recipe.alhpa", "did you mean 'alpha'?"),
    Bad("features", BASE + "  features:\n    ngram_range: [1, 2]\n", BASE_LINES + 2,
        "recipe.features.ngram_range", "did you mean 'ngramRange'?"),
    Bad("overlap-flag", edit("    type: TRAIN", "    type: TRAIN\n    allowTestoverlap: true"),
        9, "datasets[0].allowTestoverlap", "did you mean 'allowTestOverlap'?"),
)
def test_unknown_field_suggests_the_nearest_name(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


def test_allow_test_overlap_is_refused_on_a_test_dataset(tmp_path: Path) -> None:
    text = with_second_dataset(SECOND_DATASET + "    allowTestOverlap: true\n")
    check(tmp_path, Bad("on-test", text, 13, "datasets[1].allowTestOverlap",
                        "only a TRAIN dataset can set allowTestOverlap"))


# --------------------------------------------------------------------------------------------
# Dataset paths, names, labels, versions


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../x.csv", "must stay inside"),
        ("/etc/passwd", "absolute"),
        ("data/../../x", "must stay inside"),
        ("data/../x.csv", "must stay inside"),
        ("other/x.csv", "must stay inside"),
        ("data", "must stay inside"),
        ("data/", "must stay inside"),
        ("./data/../specs/x.yaml", "must stay inside"),
        ("C:/data/x.csv", "absolute"),
        ("'data\\\\x.csv'", "forward slashes"),
        ("''", "at least 1 character"),
    ],
    ids=[
        "dotdot", "etc-passwd", "data-dotdot-dotdot", "data-dotdot", "not-under-data",
        "data-itself", "data-slash", "dot-data-dotdot-specs", "windows-drive", "backslash",
        "empty",
    ],
)
def test_dataset_path_must_stay_under_data(tmp_path: Path, path: str, message: str) -> None:
    check(tmp_path, Bad(path, edit("data/train.csv", path), 9, "datasets[0].path", message))


@pytest.mark.parametrize(
    "name",
    ["-demo", "demo-", "de_mo", "de mo", "dé", "a" * 64, "''"],
    ids=["leading-dash", "trailing-dash", "underscore", "space", "non-ascii", "64-chars", "empty"],
)
def test_invalid_flywheel_name(tmp_path: Path, name: str) -> None:
    check(tmp_path, Bad(name, edit("name: demo", f"name: {name}"), 2, "name", ""))


@pytest.mark.parametrize("name", ["a", "a--b", "A1", "a" * 63], ids=["one", "dashes", "mixed",
                                                                       "63-chars"])
def test_valid_flywheel_names(tmp_path: Path, name: str) -> None:
    spec = load_spec(write_spec(tmp_path, edit("name: demo", f"name: {name}")), tmp_path).spec
    assert spec.name == name


def test_invalid_dataset_name(tmp_path: Path) -> None:
    check(tmp_path, Bad("ds", edit("- name: d1", "- name: d_1"), 7, "datasets[0].name",
                        "should match pattern"))


@params(
    Bad("duplicate-dataset-name", with_second_dataset(SECOND_DATASET.replace("d2", "d1")), 10,
        "datasets[1].name", "'d1' is used twice"),
    Bad("duplicate-dataset-path",
        with_second_dataset(SECOND_DATASET.replace("data/test.csv", "data/train.csv")), 12,
        "datasets[1].path", "used twice"),
)
def test_dataset_list_consistency(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


@pytest.mark.parametrize("text", [
    edit("datasets:\n  - name: d1\n    type: TRAIN\n    path: data/train.csv\n", ""),
    edit("TRAIN", "TEST"),
], ids=["no-datasets", "test-dataset-only"])
def test_a_spec_without_train_data_loads_and_waits_for_it(tmp_path: Path, text: str) -> None:
    """CreateFlywheel declares a flywheel before CreateDataset gives it data, as Comprehend's."""
    spec = load_spec(write_spec(tmp_path, text), tmp_path).spec
    assert spec.train_datasets == []


def test_duplicate_dataset_paths_after_normalisation(tmp_path: Path) -> None:
    text = with_second_dataset(SECOND_DATASET.replace("data/test.csv", "data/x/../train.csv"))
    error = load_error(tmp_path, text)
    assert "used twice" in error.message


@params(
    Bad("comma-delimiter", in_task("labelDelimiter: ','"),
        5, "task.labelDelimiter", "must be one character of"),
    Bad("two-char-delimiter",
        in_task("labelDelimiter: '||'"), 5,
        "task.labelDelimiter", "at most 1 character"),
    Bad("empty-delimiter", in_task("labelDelimiter: ''"),
        5, "task.labelDelimiter", "at least 1 character"),
    Bad("duplicate-labels", edit("[spam, ham]", "[spam, ham, spam]"), 5, "task.labels",
        "'spam' is declared twice"),
    Bad("label-with-spaces", edit("[spam, ham]", "[spam, ' ham']"), 5, "task.labels",
        "leading or trailing spaces"),
    Bad("label-with-control-char", edit("[spam, ham]", '[spam, "h\\tam"]'), 5, "task.labels[1]",
        "should match pattern"),
)
def test_label_rules(tmp_path: Path, case: Bad) -> None:
    check(tmp_path, case)


@pytest.mark.parametrize(
    ("delimiter", "label"),
    [("|", "a|b"), (";", "a;b"), (" ", "a b")],
    ids=["pipe", "semicolon", "space"],
)
def test_multi_label_label_containing_the_delimiter(tmp_path: Path, delimiter: str,
                                                    label: str) -> None:
    text = edit("  mode: MULTI_CLASS", f"  mode: MULTI_LABEL\n  labelDelimiter: '{delimiter}'")
    text = edit("[spam, ham]", f"[spam, '{label}']", text)
    error = load_error(tmp_path, text)
    assert "contains the label delimiter" in error.message
    # the labels are at line 6 (mode 4, labelDelimiter 5): the error must point there
    assert error.field in ("task.labels", "task.labels[1]"), str(error)
    assert error.line == 6, str(error)


@pytest.mark.parametrize(
    "version", ["version1", "v0", "1", "V1", "v01", "v1.0", "v-1"],
    ids=["word", "v0", "bare-number", "upper-V", "leading-zero", "dotted", "negative"],
)
def test_active_model_must_be_v_n(tmp_path: Path, version: str) -> None:
    check(tmp_path, Bad(version, BASE + f"activeModel: '{version}'\n", BASE_LINES + 1,
                        "activeModel", "should match pattern"))


# --------------------------------------------------------------------------------------------
# load_specs


def test_load_specs_refuses_both_twins_and_keeps_the_others(tmp_path: Path) -> None:
    write_spec(tmp_path, BASE, "a.yaml")
    write_spec(tmp_path, BASE, "team/b.yml")
    write_spec(tmp_path, edit("name: demo", "name: other"), "c.yaml")
    write_spec(tmp_path, edit("C: 1.0", "C: -1"), "d.yaml")
    write_spec(tmp_path, "not: [valid", ".hidden.yaml")
    write_spec(tmp_path, "not: [valid", "notes.txt")

    loaded, errors = load_specs(tmp_path)

    assert [s.spec.name for s in loaded] == ["other"]
    assert [s.path for s in loaded] == ["specs/c.yaml"]
    by_file = {e.file: e for e in errors}
    assert set(by_file) == {"specs/a.yaml", "specs/team/b.yml", "specs/d.yaml"}
    for mine, other in (("specs/a.yaml", "specs/team/b.yml"), ("specs/team/b.yml",
                                                                 "specs/a.yaml")):
        twin = by_file[mine]
        assert isinstance(twin, SpecError)
        assert twin.field == "name"
        assert twin.line == 2
        assert other in twin.message
        assert twin.flywheel == "demo"
    assert by_file["specs/d.yaml"].field == "recipe.C"


def test_load_specs_without_a_specs_folder_is_empty(tmp_path: Path) -> None:
    assert load_specs(tmp_path) == ([], [])


def test_load_specs_survives_a_pathological_file(tmp_path: Path) -> None:
    write_spec(tmp_path, BASE, "good.yaml")
    write_spec(tmp_path, billion_laughs(), "laughs.yaml")
    write_spec(tmp_path, b"\xff\xfe\x00", "binary.yaml")
    loaded, errors = load_specs(tmp_path)
    assert [s.path for s in loaded] == ["specs/good.yaml"]
    assert sorted(e.file for e in errors) == ["specs/binary.yaml", "specs/laughs.yaml"]


# --------------------------------------------------------------------------------------------
# The parse cache, and the specs/ folder check


def test_the_parse_cache_is_shared_safely_between_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads loading specs at once (a server answering several requests) each get the spec of
    the file they read, while the cache keeps dropping its oldest entries."""
    import threading

    monkeypatch.setattr(loader_module, "_PARSED", loader_module._ParseCache(8))
    paths = [write_spec(tmp_path, edit("name: demo", f"name: demo-{i}"), f"s{i}.yaml")
             for i in range(24)]
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for turn in range(60):
                index = (offset + turn) % len(paths)
                assert load_spec(paths[index], tmp_path).spec.name == f"demo-{index}"
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n * 5,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(loader_module._PARSED) == 8


def test_a_repeated_load_comes_from_the_cache(tmp_path: Path) -> None:
    path = write_spec(tmp_path, BASE)
    first = load_spec(path, tmp_path)
    assert load_spec(path, tmp_path) is first
    path.write_text(BASE + "\n", encoding="utf-8")  # other bytes: parsed again
    assert load_spec(path, tmp_path) is not first


def test_a_spec_linked_out_of_the_specs_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/x.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs/x.yaml").symlink_to(tmp_path / "elsewhere/x.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "specs/x.yaml", tmp_path)
    assert info.value.message.startswith("resolves outside the repository's specs/ folder (to ")
    assert info.value.file == SPEC_FILE


def test_a_spec_linked_to_a_nested_spec_inside_is_read(tmp_path: Path) -> None:
    write_spec(tmp_path, BASE, "team/real.yaml")
    (tmp_path / "specs/x.yaml").symlink_to("team/real.yaml")
    assert load_spec(tmp_path / "specs/x.yaml", tmp_path).path == SPEC_FILE
