"""Each planned action says itself: ``summary()`` is its ``flywheel plan`` line, ``to_json()``
its entry in ``flywheel plan -o json`` (the shapes the CLI has always printed)."""

from __future__ import annotations

import pytest

from reconciler.core.actions import (
    Acknowledge,
    Action,
    ApplyDecision,
    Iterate,
    Pin,
    Unpin,
    WriteSpec,
)

CASES: list[tuple[Action, str, dict]] = [
    (Iterate("d" * 64, ("v2",), 1, "new datasets: v2"),
     "iterate (new datasets: v2)",
     {"Action": "ITERATE", "Reason": "new datasets: v2", "NewDatasets": ["v2"], "Attempt": 1}),
    (Iterate("d" * 64, (), 2, "requested", "r-1"),
     "iterate (requested)",
     {"Action": "ITERATE", "Reason": "requested", "NewDatasets": [], "Attempt": 2,
      "Request": "r-1"}),
    (Pin("v1", "activeModel is pinned to v1 in the spec"),
     "pin v1",
     {"Action": "PIN", "Version": "v1", "Reason": "activeModel is pinned to v1 in the spec"}),
    (Unpin("pin removed from the spec; v1 stays active"),
     "unpin",
     {"Action": "UNPIN", "Reason": "pin removed from the spec; v1 stays active"}),
    (Unpin("pin removed; the policy makes v3 active", "v3", "20260101T000000Z"),
     "unpin, promote v3",
     {"Action": "UNPIN", "Reason": "pin removed; the policy makes v3 active", "Version": "v3"}),
    (ApplyDecision("20260101T000000Z", "v2", "F1 0.9 >= minF1 0.5"),
     "promote v2",
     {"Action": "PROMOTE", "Version": "v2", "Reason": "F1 0.9 >= minF1 0.5",
      "FlywheelIterationId": "20260101T000000Z"}),
    (WriteSpec("v2", "finish writing v2 into activeModel"),
     "write v2 back to the spec",
     {"Action": "WRITE_BACK", "Version": "v2", "Reason": "finish writing v2 into activeModel"}),
    (Acknowledge("r-2", "up to date: no new data"),
     "answer request r-2 (up to date: no new data)",
     {"Action": "ACKNOWLEDGE", "Request": "r-2", "Reason": "up to date: no new data"}),
]


@pytest.mark.parametrize(("action", "line", "shape"), CASES,
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_an_action_says_its_line_and_its_json(action: Action, line: str, shape: dict) -> None:
    assert action.summary() == line
    assert action.to_json() == shape
    assert list(action.to_json()) == list(shape)  # the keys in the order printed


def test_every_action_class_is_covered() -> None:
    assert {type(c[0]) for c in CASES} == set(Action.__args__)  # type: ignore[attr-defined]
