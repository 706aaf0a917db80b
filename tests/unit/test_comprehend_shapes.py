"""Our describe/list JSON must have Amazon Comprehend's keys, identifier patterns and types.

Key sets and patterns are those of the Comprehend API reference (FlywheelProperties,
FlywheelIterationProperties, FlywheelSummary, DescribeFlywheelIteration,
ListFlywheelIterationHistory). Ours may omit unset keys but must never add any.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from reconciler.core.arns import flywheel_arn, model_arn
from reconciler.core.responses import (
    describe_flywheel_iteration,
    flywheel_properties,
    flywheel_summary,
    iteration_properties,
    list_flywheel_iteration_history,
)
from reconciler.core.spec import FlywheelSpec
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    Observed,
    PromotionRecord,
)

ITERATION_KEYS = {
    "FlywheelArn", "FlywheelIterationId", "CreationTime", "EndTime", "Status", "Message",
    "EvaluatedModelArn", "EvaluatedModelMetrics", "TrainedModelArn", "TrainedModelMetrics",
    "EvaluationManifestS3Prefix",
}
FLYWHEEL_KEYS = {
    "FlywheelArn", "ActiveModelArn", "DataAccessRoleArn", "TaskConfig", "DataLakeS3Uri",
    "DataSecurityConfig", "Status", "ModelType", "Message", "CreationTime", "LastModifiedTime",
    "LatestFlywheelIteration",
}
SUMMARY_KEYS = {
    "FlywheelArn", "ActiveModelArn", "DataLakeS3Uri", "Status", "ModelType", "Message",
    "CreationTime", "LastModifiedTime", "LatestFlywheelIteration",
}
METRIC_KEYS = {"AverageF1Score", "AveragePrecision", "AverageRecall", "AverageAccuracy"}
ITERATION_STATUSES = {"TRAINING", "EVALUATING", "COMPLETED", "FAILED", "STOP_REQUESTED",
                      "STOPPED"}
FLYWHEEL_STATUSES = {"CREATING", "ACTIVE", "UPDATING", "DELETING", "FAILED"}
LANGUAGE_CODES = {"en", "es", "fr", "it", "de", "pt"}

FLYWHEEL_ARN = re.compile(
    r"arn:aws(-[^:]+)?:comprehend:[a-zA-Z0-9-]*:[0-9]{12}:flywheel/[a-zA-Z0-9](-*[a-zA-Z0-9])*"
)
MODEL_ARN = re.compile(
    r"arn:aws(-[^:]+)?:comprehend:[a-zA-Z0-9-]*:[0-9]{12}:(document-classifier|entity-recognizer)"
    r"/[a-zA-Z0-9](-*[a-zA-Z0-9])*(/version/[a-zA-Z0-9](-*[a-zA-Z0-9])*)?"
)
ITERATION_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z")
ARN_MAX = 256

T0 = 1_700_000_000.0
METRICS = {"AverageF1Score": 0.8, "AveragePrecision": 0.81, "AverageRecall": 0.79,
           "AverageAccuracy": 0.9}


def make_spec(name: str = "demo") -> FlywheelSpec:
    return FlywheelSpec.model_validate({
        "name": name,
        "task": {"mode": "MULTI_LABEL", "labels": ["a", "b"], "languageCode": "fr"},
        "datasets": [{"name": "d1", "type": "TRAIN", "path": "data/d1.csv"}],
    })


def record(iteration_id: str, *, name: str = "demo",
           status: IterationStatus = IterationStatus.COMPLETED, full: bool = True,
           creation: float = T0) -> IterationRecord:
    extra: dict[str, Any] = {}
    if full:
        extra = {
            "end_time": creation + 60,
            "evaluated_model_version": "v1",
            "evaluated_model_metrics": METRICS,
            "trained_model_version": "v2",
            "trained_model_metrics": {**METRICS, "AverageF1Score": 0.85},
        }
    return IterationRecord(flywheel_name=name, flywheel_iteration_id=iteration_id,
                           status=status, message="ok", creation_time=creation,
                           input_digest="0" * 64, **extra)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_iteration(props: dict[str, Any]) -> None:
    assert set(props) <= ITERATION_KEYS, set(props) - ITERATION_KEYS
    assert {"FlywheelArn", "FlywheelIterationId", "CreationTime", "Status"} <= set(props)
    assert FLYWHEEL_ARN.fullmatch(props["FlywheelArn"])
    assert len(props["FlywheelArn"]) <= ARN_MAX
    assert ITERATION_ID.fullmatch(props["FlywheelIterationId"])
    assert props["Status"] in ITERATION_STATUSES
    assert isinstance(props.get("Message", ""), str)
    for key in ("CreationTime", "EndTime"):
        if key in props:
            assert is_number(props[key]), key
    for key in ("EvaluatedModelArn", "TrainedModelArn"):
        if key in props:
            assert MODEL_ARN.fullmatch(props[key]), props[key]
            assert len(props[key]) <= ARN_MAX
    for key in ("EvaluatedModelMetrics", "TrainedModelMetrics"):
        if key in props:
            assert set(props[key]) <= METRIC_KEYS
            assert all(is_number(v) for v in props[key].values())
    assert isinstance(props.get("EvaluationManifestS3Prefix", ""), str)


# --------------------------------------------------------------------------------------------
# Identifiers


@pytest.mark.parametrize("name", ["demo", "a", "a--b", "A1", "x" * 63],
                         ids=["demo", "one-char", "double-dash", "mixed-case", "63-chars"])
def test_arns_match_comprehend_patterns(name: str) -> None:
    assert FLYWHEEL_ARN.fullmatch(flywheel_arn(name))
    for version in ("v1", "v42"):
        arn = model_arn(name, version)
        assert arn is not None and MODEL_ARN.fullmatch(arn)
        assert arn.startswith("arn:aws:comprehend:")
        assert ":document-classifier/" in arn and arn.endswith(f"/version/{version}")
        assert len(arn) <= ARN_MAX
    assert model_arn(name, None) is None


def test_flywheel_and_model_arns_share_region_and_account() -> None:
    flywheel = flywheel_arn("demo").split(":")
    model = model_arn("demo", "v1").split(":")
    assert flywheel[:5] == model[:5]
    assert re.fullmatch(r"[0-9]{12}", flywheel[4])


# --------------------------------------------------------------------------------------------
# Iterations


@pytest.mark.parametrize(
    ("built", "expected_keys"),
    [
        (record("20240101T000000Z"), ITERATION_KEYS),
        (record("20240101T000000Z", status=IterationStatus.TRAINING, full=False),
         {"FlywheelArn", "FlywheelIterationId", "CreationTime", "Status", "Message",
          "EvaluationManifestS3Prefix"}),
        (record("20240101T000000Z", status=IterationStatus.FAILED, full=False),
         {"FlywheelArn", "FlywheelIterationId", "CreationTime", "Status", "Message",
          "EvaluationManifestS3Prefix"}),
    ],
    ids=["completed-full", "training-minimal", "failed-minimal"],
)
def test_iteration_properties_keys(built: IterationRecord, expected_keys: set[str]) -> None:
    props = iteration_properties(built)
    check_iteration(props)
    assert set(props) == expected_keys
    assert None not in props.values()


def test_iteration_properties_values() -> None:
    props = iteration_properties(record("20240101T000000Z"))
    assert props["FlywheelArn"] == flywheel_arn("demo")
    assert props["TrainedModelArn"] == model_arn("demo", "v2")
    assert props["EvaluatedModelArn"] == model_arn("demo", "v1")
    assert props["TrainedModelMetrics"]["AverageF1Score"] == 0.85
    assert props["CreationTime"] == T0
    assert props["EndTime"] == T0 + 60
    assert props["Status"] == "COMPLETED"
    assert "20240101T000000Z" in props["EvaluationManifestS3Prefix"]


def test_describe_flywheel_iteration_wraps_the_properties() -> None:
    built = record("20240101T000000Z")
    described = describe_flywheel_iteration(built)
    assert set(described) == {"FlywheelIterationProperties"}
    assert described["FlywheelIterationProperties"] == iteration_properties(built)
    json.dumps(described)  # plain JSON


def test_history_is_newest_first() -> None:
    ids = ["20240105T120000Z", "20231231T235959Z", "20240105T115959Z", "20240301T000000Z"]
    history = list_flywheel_iteration_history([record(i) for i in ids])
    assert set(history) <= {"FlywheelIterationPropertiesList", "NextToken"}
    listed = [p["FlywheelIterationId"] for p in history["FlywheelIterationPropertiesList"]]
    assert listed == sorted(ids, reverse=True)
    for props in history["FlywheelIterationPropertiesList"]:
        check_iteration(props)
    json.dumps(history)


def test_history_of_nothing_is_an_empty_list() -> None:
    assert list_flywheel_iteration_history([]) == {"FlywheelIterationPropertiesList": []}


# --------------------------------------------------------------------------------------------
# Flywheels


def observed_with_history() -> Observed:
    status = FlywheelStatus(
        flywheel_name="demo", creation_time=T0 - 1000, active_model="v2",
        promotions=[PromotionRecord(version="v2", previous_version="v1", time=T0 + 500,
                                    kind="POLICY", reason="better")],
    )
    return Observed(status=status, iterations=(record("20240101T000000Z", creation=T0 - 500),
                                               record("20240102T000000Z", creation=T0)))


@pytest.mark.parametrize(
    ("observed", "status", "present"),
    [
        (Observed(), "CREATING", {"FlywheelArn", "TaskConfig", "DataLakeS3Uri", "Status",
                                  "ModelType", "Message", "DataSecurityConfig"}),
        (observed_with_history(), "ACTIVE", {"FlywheelArn", "ActiveModelArn", "TaskConfig",
                                            "DataLakeS3Uri", "DataSecurityConfig", "Status",
                                            "ModelType", "Message", "CreationTime",
                                            "LastModifiedTime", "LatestFlywheelIteration"}),
    ],
    ids=["not-yet-reconciled", "with-history"],
)
def test_flywheel_properties(observed: Observed, status: str, present: set[str]) -> None:
    props = flywheel_properties(make_spec(), observed, "all good")
    assert set(props) <= FLYWHEEL_KEYS, set(props) - FLYWHEEL_KEYS
    assert set(props) == present
    assert props["Status"] == status and status in FLYWHEEL_STATUSES
    assert props["ModelType"] == "DOCUMENT_CLASSIFIER"
    assert props["Message"] == "all good"
    assert FLYWHEEL_ARN.fullmatch(props["FlywheelArn"])
    assert props["TaskConfig"] == {
        "LanguageCode": "fr",
        "DocumentClassificationConfig": {"Mode": "MULTI_LABEL", "Labels": ["a", "b"]},
    }
    assert props["TaskConfig"]["LanguageCode"] in LANGUAGE_CODES
    assert isinstance(props["DataSecurityConfig"], dict)
    json.dumps(props)


def test_flywheel_properties_with_history_values() -> None:
    props = flywheel_properties(make_spec(), observed_with_history(), "")
    assert MODEL_ARN.fullmatch(props["ActiveModelArn"])
    assert props["ActiveModelArn"] == model_arn("demo", "v2")
    assert ITERATION_ID.fullmatch(props["LatestFlywheelIteration"])
    assert props["LatestFlywheelIteration"] == "20240102T000000Z"
    assert is_number(props["CreationTime"]) and is_number(props["LastModifiedTime"])
    assert props["CreationTime"] == T0 - 1000
    assert props["LastModifiedTime"] == T0 + 500
    assert props["LastModifiedTime"] >= props["CreationTime"]


def test_flywheel_summary_keys() -> None:
    for observed in (Observed(), observed_with_history()):
        summary = flywheel_summary(make_spec(), observed, "msg")
        assert set(summary) <= SUMMARY_KEYS
        assert FLYWHEEL_ARN.fullmatch(summary["FlywheelArn"])
        if "LatestFlywheelIteration" in summary:
            assert ITERATION_ID.fullmatch(summary["LatestFlywheelIteration"])
