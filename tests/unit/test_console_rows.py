"""The console's table rows, table-driven: figures and deltas, per-label challenger against
champion, the confusion matrix and its shading, and the iterations and list rows of a small
FlywheelView built from records (no repository, no HTML)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reconciler.api import FlywheelView
from reconciler.core.spec import Mode
from reconciler.core.state import (
    Decision,
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelMetrics,
    ModelVersionRecord,
    Observed,
)
from reconciler.errors import SpecError
from reconciler.server.console import rows

BROKEN = SpecError("name: not a name", file="specs/fw.yaml", line=2, flywheel="fw")


@pytest.mark.parametrize(("value", "shown"), [
    (None, ""), (math.nan, ""), (0.0, "0.0000"), (1.0, "1.0000"), (0.12345, "0.1235"),
    (0.77164, "0.7716"), (-0.5, "-0.5000"), (2, "2.0000"),
])
def test_figure(value: float | None, shown: str) -> None:
    assert rows.figure(value) == shown


@pytest.mark.parametrize(("new", "old", "shown"), [
    (None, 0.5, ""), (0.5, None, ""), (None, None, ""),
    (0.5, 0.5, "±0.0000"), (0.50004, 0.5, "±0.0000"), (0.5, 0.50004, "±0.0000"),
    (0.6, 0.5, "+0.1000"), (0.4, 0.5, "-0.1000"), (0.5001, 0.5, "+0.0001"),
    (1.0, 0.0, "+1.0000"),
])
def test_delta(new: float | None, old: float | None, shown: str) -> None:
    assert rows.delta(new, old) == shown


def _label(label: str, p: float, r: float, f1: float, support: int = 3) -> dict[str, Any]:
    return {"label": label, "precision": p, "recall": r, "f1Score": f1, "support": support}


def _evaluation(*per_label: dict[str, Any]) -> dict[str, Any]:
    return {"perLabel": list(per_label)}


@pytest.mark.parametrize(("trained", "active", "expected"), [
    # same figures: no difference, same tone
    (_evaluation(_label("a", .5, .5, .5)), _evaluation(_label("a", .5, .5, .5)),
     [("a", "3", ("0.5000", "0.5000", "0.5000"), ("0.5000", "0.5000", "0.5000"),
       "±0.0000", False, "same")]),
    # better F1
    (_evaluation(_label("a", .6, .7, .65, 4)), _evaluation(_label("a", .5, .5, .5, 4)),
     [("a", "4", ("0.6000", "0.7000", "0.6500"), ("0.5000", "0.5000", "0.5000"),
       "+0.1500", True, "better")]),
    # worse F1
    (_evaluation(_label("a", .5, .5, .4)), _evaluation(_label("a", .5, .5, .5)),
     [("a", "3", ("0.5000", "0.5000", "0.4000"), ("0.5000", "0.5000", "0.5000"),
       "-0.1000", True, "worse")]),
    # precision differs but F1 is the same: differs, tone same
    (_evaluation(_label("a", .6, .5, .5)), _evaluation(_label("a", .5, .5, .5)),
     [("a", "3", ("0.6000", "0.5000", "0.5000"), ("0.5000", "0.5000", "0.5000"),
       "±0.0000", True, "same")]),
    # a change below the threshold counts as none
    (_evaluation(_label("a", .5, .5, .50001)), _evaluation(_label("a", .5, .5, .5)),
     [("a", "3", ("0.5000", "0.5000", "0.5000"), ("0.5000", "0.5000", "0.5000"),
       "±0.0000", False, "same")]),
    # a label only the challenger has, then one only the champion has
    (_evaluation(_label("a", .5, .5, .5), _label("new", .9, .9, .9, 2)),
     _evaluation(_label("a", .5, .5, .5), _label("old", .1, .1, .1, 5)),
     [("a", "3", ("0.5000",) * 3, ("0.5000",) * 3, "±0.0000", False, "same"),
      ("new", "2", ("0.9000",) * 3, ("", "", ""), "", True, "same"),
      ("old", "5", ("", "", ""), ("0.1000",) * 3, "", True, "same")]),
    # no champion at all (the first iteration)
    (_evaluation(_label("a", .5, .5, .5)), None,
     [("a", "3", ("0.5000",) * 3, ("", "", ""), "", True, "same")]),
    # a figure missing or not a number
    (_evaluation({"label": "a", "precision": "high", "recall": .5, "f1Score": .5}),
     _evaluation(_label("a", .5, .5, .5)),
     [("a", "", ("", "0.5000", "0.5000"), ("0.5000",) * 3, "±0.0000", True, "same")]),
    # nothing to compare
    (None, None, []),
    ({}, {"perLabel": None}, []),
    (_evaluation("not a row", 3), None, []),  # type: ignore[arg-type]
])
def test_label_rows(trained: dict[str, Any] | None, active: dict[str, Any] | None,
                    expected: list[tuple[Any, ...]]) -> None:
    got = rows.label_rows(trained, active)
    assert [(r.label, r.support, r.challenger, r.champion, r.f1_delta, r.differs, r.tone)
            for r in got] == expected


def test_label_rows_keep_the_evaluations_order() -> None:
    trained = _evaluation(_label("z", .5, .5, .5), _label("b", .5, .5, .5),
                          _label("m", .5, .5, .5))
    active = _evaluation(_label("m", .5, .5, .5), _label("a", .5, .5, .5))
    assert [r.label for r in rows.label_rows(trained, active)] == ["z", "b", "m", "a"]


def test_confusion_well_formed() -> None:
    found = rows.confusion({"labels": ["a", "b", "c"],
                            "confusionMatrix": [[5, 1, 0], [3, 4, 0], [0, 2, 7]]})
    assert found is not None
    assert found.labels == ["a", "b", "c"]
    assert found.rows == [[5, 1, 0], [3, 4, 0], [0, 2, 7]]
    assert found.worst == 3
    assert found.totals == [6, 7, 9]


def test_confusion_all_on_the_diagonal() -> None:
    found = rows.confusion({"labels": ["a", "b"], "confusionMatrix": [[2, 0], [0, 3]]})
    assert found is not None and found.worst == 0 and found.totals == [2, 3]


@pytest.mark.parametrize("evaluation", [
    None,
    {},
    {"labels": ["a", "b"]},
    {"labels": [], "confusionMatrix": []},
    {"labels": ["a", "b"], "confusionMatrix": [[1, 0]]},             # too few rows
    {"labels": ["a", "b"], "confusionMatrix": [[1, 0], [0, 1], [0, 0]]},
    {"labels": ["a", "b"], "confusionMatrix": [[1, 0], [0]]},        # ragged
    {"labels": ["a", "b"], "confusionMatrix": [[1, 0, 0], [0, 1]]},
    {"labels": ["a", "b"], "confusionMatrix": [[1, 0], [0, 1.5]]},   # not an int
    {"labels": ["a", "b"], "confusionMatrix": [[1, "0"], [0, 1]]},
    {"labels": ["a", "b"], "confusionMatrix": [[1, None], [0, 1]]},
    {"labels": ["a", "b"], "confusionMatrix": [[1, 0], "01"]},
    {"labels": ["a", "b"], "confusionMatrix": {"a": [1, 0]}},
])
def test_confusion_malformed_is_none(evaluation: dict[str, Any] | None) -> None:
    assert rows.confusion(evaluation) is None


@pytest.mark.parametrize(("count", "total", "diagonal", "css"), [
    (0, 10, True, "c0"), (0, 10, False, "c0"), (5, 0, True, "c0"), (3, -1, False, "c0"),
    (1, 10, True, "d0"), (2, 10, True, "d1"), (4, 10, False, "e2"), (7, 10, True, "d3"),
    (8, 10, False, "e4"), (10, 10, True, "d4"), (1, 1, False, "e4"),
])
def test_shade(count: int, total: int, diagonal: bool, css: str) -> None:
    assert rows.shade(count, total, diagonal) == css


# rows of a view -----------------------------------------------------------------------------


def _record(iteration_id: str, status: IterationStatus = IterationStatus.COMPLETED, *,
            trained: str | None = None, evaluated: str | None = None,
            trained_f1: float | None = None, active_f1: float | None = None,
            promote: bool | None = None, message: str = "") -> IterationRecord:
    return IterationRecord(
        flywheel_name="fw", flywheel_iteration_id=iteration_id, status=status,
        message=message, creation_time=1_800_000_000.0, end_time=1_800_000_060.0,
        input_digest="d" * 8, trained_model_version=trained,
        trained_model_metrics=ModelMetrics(average_f1_score=trained_f1)
        if trained_f1 is not None else None,
        evaluated_model_version=evaluated,
        evaluated_model_metrics=ModelMetrics(average_f1_score=active_f1)
        if active_f1 is not None else None,
        decision=Decision(promote=promote, reason="because") if promote is not None else None)


def _version(version: str) -> ModelVersionRecord:
    return ModelVersionRecord(version=version, flywheel_iteration_id="it", creation_time=1.0,
                              file=f"models/{version}.json", sha256="0" * 64, size=1,
                              mode=Mode.MULTI_CLASS, labels=["a", "b"], recipe={}, datasets=[],
                              trained_model_metrics=ModelMetrics())


def _view(*records: IterationRecord, active: str | None = None,
          versions: tuple[str, ...] = ()) -> FlywheelView:
    """A view of records whose spec does not load (so no plan is needed for its conditions)."""
    status = FlywheelStatus(flywheel_name="fw", creation_time=1_800_000_000.0,
                            active_model=active)
    observed = Observed(status=status, iterations=records,
                        versions={v: _version(v) for v in versions})
    return FlywheelView("fw", None, observed, None, BROKEN)


def test_iteration_rows_newest_first_with_actions() -> None:
    view = _view(
        _record("it-1", trained="v1", trained_f1=.7, promote=True),
        _record("it-2", trained="v2", evaluated="v1", trained_f1=.8, active_f1=.7,
                promote=False),
        _record("it-3", IterationStatus.FAILED, message="no data"),
        active="v1", versions=("v1", "v2"))
    got = rows.iteration_rows(view, None)
    assert [r.id for r in got] == ["it-3", "it-2", "it-1"]
    failed, second, first = got
    assert failed.status == rows.Pill("FAILED", "bad") and failed.message == "no data"
    assert not failed.can_activate and failed.trained.version is None
    assert second.can_activate and not second.promoted  # v2 exists, not active
    assert (second.trained.f1, second.evaluated.f1, second.evaluated.version) == \
        ("0.8000", "0.7000", "v1")
    assert not first.can_activate and first.promoted    # v1 is active already
    assert first.href == "/flywheels/fw/iterations/it-1"
    assert first.started == "2027-01-15 08:00:00" and first.ended == "2027-01-15 08:01:00"


def test_a_trained_version_without_its_record_cannot_be_activated() -> None:
    view = _view(_record("it-1", trained="v1", trained_f1=.7), versions=())
    assert not rows.iteration_rows(view, None)[0].can_activate


def test_a_requested_iteration_is_on_top_until_it_starts() -> None:
    view = _view(_record("it-1", trained="v1"), versions=("v1",))
    got = rows.iteration_rows(view, "it-2")
    assert [r.id for r in got] == ["it-2", "it-1"]
    assert got[0].status.text == "REQUESTED" and got[0].href is None
    assert not got[0].can_activate
    assert [r.id for r in rows.iteration_rows(view, "it-1")] == ["it-1"]


def test_flywheel_row_of_a_view_without_a_spec() -> None:
    view = _view(_record("it-1/odd id", IterationStatus.TRAINING, trained_f1=.5),
                 active="v1", versions=("v1",))
    row = rows.flywheel_row(view, {"Status": "ACTIVE", "Message": "ok"}, frozenset())
    assert row.name == "fw" and row.href == "/flywheels/fw"
    assert row.model_type == "?"
    assert row.status == rows.Pill("ACTIVE", "good", "ok")
    assert row.active_version == "v1"
    assert row.latest_id == "it-1/odd id"
    assert row.latest_href == "/flywheels/fw/iterations/it-1%2Fodd%20id"
    assert row.latest_status is not None and row.latest_status.tone == "busy"
    assert row.latest_trained == "0.5000" and row.latest_evaluated == ""
    assert row.sync.text == "Unknown"
    assert row.message == "specs/fw.yaml:2: name: not a name"
    assert [(c.text, c.tone) for c in row.conditions] == [("Not ready: Stalled", "warn"),
                                                          ("Stalled", "bad")]


def test_flywheel_row_without_iterations_or_status() -> None:
    named = SpecError("name: not a name", file="specs/a.yaml", line=2, flywheel="a b")
    view = FlywheelView("a b", None, Observed(), None, named)
    assert rows.flywheel_row(view, {}, None).href == "/flywheels/a%20b"
    # a spec listed under its file's path (it names no flywheel) has no page to link to
    nameless = SpecError("not valid YAML", file="specs/a.yaml", line=1)
    view = FlywheelView("specs/a.yaml", None, Observed(), None, nameless)
    row = rows.flywheel_row(view, {}, None)
    assert row.href is None and row.message == "specs/a.yaml:1: not valid YAML"
    assert row.status.text == "FAILED" and row.status.tone == "bad"
    assert row.active_version is None and row.active_f1 == ""
    assert row.latest_id is None and row.latest_href is None and row.latest_status is None


@pytest.mark.parametrize(("status", "tone"), [
    ("COMPLETED", "good"), ("FAILED", "bad"), ("TRAINING", "busy"), ("STOPPED", "idle"),
    ("STOP_REQUESTED", "warn"), ("SOMETHING_NEW", "idle"),
])
def test_status_pill(status: str, tone: str) -> None:
    assert rows.status_pill(status, "why") == rows.Pill(status, tone, "why")

