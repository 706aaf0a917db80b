"""Data drift's pure functions (reconciler/core/drift.py), table-driven."""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path
from typing import Any

import pytest

from reconciler.core import drift
from reconciler.core.spec import FlywheelSpec
from reconciler.core.state import DataDrift, IterationRecord


@pytest.mark.parametrize("expected,actual,want", [
    pytest.param({"a": 5, "b": 5}, {"a": 5, "b": 5}, 0.0, id="identical"),
    pytest.param({"a": 1, "b": 3}, {"a": 10, "b": 30}, 0.0, id="same shares, other counts"),
    # (0.25-0.5)ln(0.25/0.5) + (0.75-0.5)ln(0.75/0.5), by hand
    pytest.param({"a": 2, "b": 2}, {"a": 1, "b": 3},
                 0.25 * math.log(2) + 0.25 * math.log(1.5), id="hand-computed"),
    # an unseen label: its reference share 0 becomes epsilon
    pytest.param({"a": 1}, {"a": 1, "b": 1},
                 (0.5 - 1) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4),
                 id="unseen label"),
    # a label the new data no longer has: its new share is epsilon
    pytest.param({"a": 1, "b": 1}, {"a": 1},
                 (1 - 0.5) * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5),
                 id="vanished label"),
    pytest.param({}, {"a": 1}, None, id="empty reference"),
    pytest.param({"a": 1}, {}, None, id="empty new data"),
    pytest.param({"a": 0}, {"a": 0}, None, id="zero counts"),
])
def test_psi(expected: dict[str, int], actual: dict[str, int], want: float | None) -> None:
    got = drift.psi(expected, actual)
    if want is None:
        assert got is None
    else:
        assert got == pytest.approx(want, abs=1e-12)


def test_psi_known_value() -> None:
    assert drift.psi({"a": 1, "b": 1}, {"a": 1, "b": 3}) == pytest.approx(0.274653, abs=1e-6)


@pytest.mark.parametrize("value,reading", [
    (None, "not measured"), (0.0, "little shift"), (0.099, "little shift"),
    (0.1, "moderate shift"), (0.25, "moderate shift"), (0.26, "large shift"),
])
def test_psi_reading(value: float | None, reading: str) -> None:
    assert drift.psi_reading(value) == reading


@pytest.mark.parametrize("text,lowercase,want", [
    ("Hello, World!", True, ["hello", "world"]),
    ("Hello World", False, ["Hello", "World"]),
    ("a I x ok", True, ["ok"]),  # one-character words are not tokens
    ("naïve café 42", True, ["naïve", "café", "42"]),  # unicode word characters
    ("e-mail foo_bar", True, ["mail", "foo_bar"]),
    ("", True, []),
])
def test_tokens_as_the_word_analyzer(text: str, lowercase: bool, want: list[str]) -> None:
    assert drift.tokens(text, lowercase=lowercase) == want


def _measured(reference_docs: list[tuple[list[str], str]],
              new_docs: list[tuple[list[str], str]], **kwargs: Any) -> dict[str, Any]:
    reference = drift.reference_sample(**kwargs)
    for labels, text in reference_docs:
        reference.add(labels, text)
    new = drift.new_sample(reference)
    for labels, text in new_docs:
        new.add(labels, text)
    return drift.measure(reference, new)


REFERENCE = [(["a"], "alpha beta"), (["b"], "gamma delta")]


@pytest.mark.parametrize("new,want", [
    pytest.param(REFERENCE, {"labelPsi": 0.0, "oovShare": 0.0, "meanLength": 10.5,
                             "medianLength": 10.5, "lengthRatio": 1.0, "documents": 2},
                 id="the reference itself"),
    pytest.param([(["a"], "alpha zeta"), (["a"], "omega omega alpha")],
                 {"oovShare": 0.6, "meanLength": 13.5, "medianLength": 13.5,
                  "lengthRatio": round(13.5 / 10.5, 6), "documents": 2},
                 id="unseen tokens counted per occurrence"),
    pytest.param([], {"labelPsi": None, "oovShare": None, "meanLength": None,
                      "medianLength": None, "lengthRatio": None, "documents": 0},
                 id="no new documents"),
    pytest.param([(["a"], "!!"), (["b"], "?")], {"labelPsi": 0.0, "oovShare": None,
                                                 "documents": 2}, id="no tokens"),
])
def test_measure(new: list[tuple[list[str], str]], want: dict[str, Any]) -> None:
    got = _measured(REFERENCE, new)
    assert {key: got[key] for key in want} == want


def test_multi_label_uses_presence_rates_normalised() -> None:
    # presence: a in 2 of 2 documents, b in 1 -> shares 2/3, 1/3 (label occurrences)
    reference = [(["a", "b"], "x1 y1"), (["a"], "x2 y2")]
    same_mix = [(["a"], "x1"), (["a", "b"], "y1"), (["a", "a"], "x2")]  # a twice: once
    got = _measured(reference, same_mix[:2])
    assert got["labelPsi"] == 0.0
    assert _measured(reference, same_mix)["labelPsi"] == pytest.approx(
        drift.psi({"a": 2, "b": 1}, {"a": 3, "b": 1}), abs=1e-6)


def test_vocabulary_cap() -> None:
    reference = drift.reference_sample(cap=2)
    reference.add(["a"], "one two three")
    assert reference.capped and reference.vocabulary == {"one", "two"}
    new = drift.new_sample(reference)
    new.add(["a"], "three one")
    assert drift.measure(reference, new)["oovShare"] == 0.5  # an upper bound past the cap
    described = drift.describe_reference(reference, "v1")
    assert described == {"version": "v1", "documents": 1, "vocabulary": 2,
                         "vocabularyCapped": True, "meanLength": 13.0, "medianLength": 13.0}


def test_lowercase_follows_the_recipe() -> None:
    assert _measured([(["a"], "Alpha")], [(["a"], "alpha")], lowercase=False)["oovShare"] == 1
    assert _measured([(["a"], "Alpha")], [(["a"], "alpha")])["oovShare"] == 0


def test_record_shape_round_trips_and_old_records_read() -> None:
    old = {"flywheelName": "f", "flywheelIterationId": "20240101T000000Z",
           "status": "COMPLETED", "creationTime": 1.0, "inputDigest": "d"}
    assert IterationRecord.model_validate(old).drift is None
    figures = {"labelPsi": 0.3, "oovShare": 0.1, "meanLength": 9.0, "medianLength": 8.0,
               "lengthRatio": 0.857143, "documents": 3}
    shape: dict[str, Any] = {
        "reference": {"version": "v1", "documents": 2, "vocabulary": 4,
                      "vocabularyCapped": False, "meanLength": 10.5, "medianLength": 10.5},
        "datasets": {"d2": {**figures, "md5": "ignored", "type": "TRAIN"}},
        "newTrainData": figures,
    }
    record = IterationRecord.model_validate({**old, "drift": shape})
    assert isinstance(record.drift, DataDrift)
    dumped = record.to_json_dict()["drift"]
    assert isinstance(dumped, dict)
    assert dumped["datasets"]["d2"] == figures == dumped["newTrainData"]
    assert dumped["reference"] == shape["reference"]


# What people read: `flywheel iteration` and the Markdown report ----------------------------------

def _record(drift_shape: dict[str, Any] | None, evaluated: str | None = "v1") -> IterationRecord:
    return IterationRecord.model_validate({
        "flywheelName": "f", "flywheelIterationId": "20240101T000000Z", "status": "COMPLETED",
        "creationTime": 1.0, "inputDigest": "d", "newDatasets": ["d2"],
        "evaluatedModelVersion": evaluated, "drift": drift_shape})


FIGURES = {"labelPsi": 0.3125, "oovShare": 0.041, "meanLength": 420.0, "medianLength": 400.0,
           "lengthRatio": 1.05, "documents": 23}
DRIFT: dict[str, Any] = {
    "reference": {"version": "v1", "documents": 60, "vocabulary": 900, "meanLength": 400.0,
                  "medianLength": 390.0},
    "datasets": {"d2": FIGURES},
    "newTrainData": FIGURES,
}


def test_iteration_view_shows_the_drift_block() -> None:
    from reconciler.cli.text import drift_lines

    assert drift_lines(_record(DRIFT)) == [
        "  Data drift against v1's training data (60 documents, mean length 400 chars):",
        "    d2: label PSI 0.312 (large shift), unseen tokens 4.1%, mean length 420 vs 400 "
        "chars (ratio 1.05); 23 documents"]
    assert drift_lines(_record(None, evaluated=None)) == [
        "  data drift: no active model to compare with"]
    assert drift_lines(_record(None)) == ["  data drift: not measured"]
    several = {**DRIFT, "datasets": {**DRIFT["datasets"], "d3": DRIFT["newTrainData"]}}
    assert drift_lines(_record(several))[-1].startswith("    all new TRAIN data: label PSI")


def test_markdown_report_has_a_drift_line() -> None:
    from reconciler.reports.markdown import iteration_facts

    facts = iteration_facts(_record(DRIFT))
    assert ("- Data drift vs v1's training data: d2 label PSI 0.3125 (large shift), unseen "
            "tokens 4.1%, length ratio 1.05") in facts
    assert "Data drift" not in iteration_facts(_record(None))


# The prepare stage's measuring (no DVC: the function the stage calls) ----------------------------

def _write(path: Path, rows: list[tuple[str, str]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_prepare_measures_new_datasets_against_the_reference(tmp_path: Path) -> None:
    from reconciler.stages.params import StageParams
    from reconciler.stages.prepare import measure_drift

    old = [("a", "alpha beta"), ("b", "gamma delta")] * 5
    md5_old = _write(tmp_path / "data/old.csv", old)
    md5_new = _write(tmp_path / "data/new.csv", [("a", "alpha zeta")] * 4)
    md5_test = _write(tmp_path / "data/test.csv", old[:4])
    spec = FlywheelSpec.model_validate({
        "name": "f", "task": {"mode": "MULTI_CLASS", "labels": ["a", "b"],
                              "minDocumentsPerLabel": 1},
        "datasets": [{"name": "old", "type": "TRAIN", "path": "data/old.csv"},
                     {"name": "new", "type": "TRAIN", "path": "data/new.csv"},
                     {"name": "test", "type": "TEST", "path": "data/test.csv"}]})
    read = {"data/old.csv": (md5_old, 0), "data/new.csv": (md5_new, 0),
            "data/test.csv": (md5_test, 0)}
    reference = {"version": "v1", "datasets": [
        {"name": "old", "path": "data/old.csv", "md5": md5_old},
        {"name": "gone", "path": "data/gone.csv", "md5": "0" * 32}]}  # no longer there: left out
    params = StageParams(spec=spec, active=None, root=tmp_path, drift_reference=reference)
    measured = measure_drift(params, tmp_path, read)  # the "snapshot" is the folder itself
    assert measured is not None
    assert measured["reference"]["documents"] == 10
    assert set(measured["datasets"]) == {"new", "test"}  # the test data was never trained on
    new = measured["datasets"]["new"]
    assert (new["oovShare"], new["documents"], new["md5"], new["type"]) == (
        0.5, 4, md5_new, "TRAIN")
    assert new["labelPsi"] == pytest.approx(drift.psi({"a": 5, "b": 5}, {"a": 4}), abs=1e-6)
    assert measured["datasets"]["test"]["labelPsi"] == 0.0
    assert measured["newTrainData"] == {k: v for k, v in new.items() if k not in ("md5", "type")}
    assert measure_drift(StageParams(spec=spec, active=None, root=tmp_path), tmp_path,
                         read) is None  # no active model: nothing to measure against
    only_gone = {"version": "v1", "datasets": reference["datasets"][1:]}
    assert measure_drift(StageParams(spec=spec, active=None, root=tmp_path,
                                     drift_reference=only_gone), tmp_path, read) is None
