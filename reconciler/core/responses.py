"""Comprehend's response shapes, built from our records (pure).

``describe-flywheel``, ``list-flywheels``, ``describe-flywheel-iteration`` and
``list-flywheel-iteration-history`` answer with exactly the keys Comprehend's API uses, so scripts
written against Comprehend read our JSON unchanged. Timestamps are epoch seconds; identifiers are
ARN-shaped in a ``local`` region of account ``000000000000``.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.layout import Workspace
from reconciler.core.spec import FlywheelSpec
from reconciler.core.state import IterationRecord, ModelMetrics, Observed

ARN_PREFIX = "arn:aws:comprehend:local:000000000000:"


def flywheel_arn(name: str) -> str:
    return f"{ARN_PREFIX}flywheel/{name}"


def model_arn(name: str, version: str | None) -> str | None:
    return None if version is None else f"{ARN_PREFIX}document-classifier/{name}/version/{version}"


def data_lake_uri(name: str) -> str:
    return f"{Workspace(name).lake}/"


def _figures(metrics: ModelMetrics | None) -> dict[str, float] | None:
    return metrics.figures() if metrics is not None else None


def iteration_properties(record: IterationRecord) -> dict[str, Any]:
    name = record.flywheel_name
    props: dict[str, Any] = {
        "FlywheelArn": flywheel_arn(name),
        "FlywheelIterationId": record.flywheel_iteration_id,
        "CreationTime": record.creation_time,
        "EndTime": record.end_time,
        "Status": record.status.value,
        "Message": record.message,
        "EvaluatedModelArn": model_arn(name, record.evaluated_model_version),
        "EvaluatedModelMetrics": _figures(record.evaluated_model_metrics),
        "TrainedModelArn": model_arn(name, record.trained_model_version),
        "TrainedModelMetrics": _figures(record.trained_model_metrics),
        "EvaluationManifestS3Prefix": f"{Workspace(name).evaluations}/"
                                      f"{record.flywheel_iteration_id}/",
    }
    return {key: value for key, value in props.items() if value is not None}


def describe_flywheel_iteration(record: IterationRecord) -> dict[str, Any]:
    return {"FlywheelIterationProperties": iteration_properties(record)}


def list_flywheel_iteration_history(records: list[IterationRecord]) -> dict[str, Any]:
    newest_first = sorted(records, key=lambda r: r.flywheel_iteration_id, reverse=True)
    return {"FlywheelIterationPropertiesList": [iteration_properties(r) for r in newest_first]}


def flywheel_properties(spec: FlywheelSpec, observed: Observed, message: str) -> dict[str, Any]:
    status = observed.status
    latest = observed.latest
    props: dict[str, Any] = {
        "FlywheelArn": flywheel_arn(spec.name),
        "ActiveModelArn": model_arn(spec.name, observed.active_model),
        "TaskConfig": {
            "LanguageCode": spec.task.language_code.value,
            "DocumentClassificationConfig": {
                "Mode": spec.task.mode.value,
                "Labels": list(spec.task.labels),
            },
        },
        "DataLakeS3Uri": data_lake_uri(spec.name),
        "DataSecurityConfig": {},
        "Status": "ACTIVE" if status else "CREATING",
        "ModelType": "DOCUMENT_CLASSIFIER",
        "Message": message,
        "CreationTime": status.creation_time if status else None,
        "LastModifiedTime": _last_modified(observed),
        "LatestFlywheelIteration": latest.flywheel_iteration_id if latest else None,
    }
    return {key: value for key, value in props.items() if value is not None}


def flywheel_summary(spec: FlywheelSpec, observed: Observed, message: str) -> dict[str, Any]:
    props = flywheel_properties(spec, observed, message)
    keys = ("FlywheelArn", "ActiveModelArn", "DataLakeS3Uri", "Status", "ModelType", "Message",
            "CreationTime", "LastModifiedTime", "LatestFlywheelIteration")
    return {key: props[key] for key in keys if key in props}


def _last_modified(observed: Observed) -> float | None:
    times = [t for it in observed.iterations for t in (it.creation_time, it.end_time) if t]
    if observed.status:
        times.append(observed.status.creation_time)
        times.extend(p.time for p in observed.status.promotions)
    return max(times, default=None)
