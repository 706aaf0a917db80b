"""Every JSON response shape, built from records and results (pure): one place for each.

Comprehend's: ``describe-flywheel``, ``list-flywheels``, ``describe-flywheel-iteration`` and
``list-flywheel-iteration-history`` answer with exactly the keys Comprehend's API uses, so scripts
written against Comprehend read our JSON unchanged. Timestamps are epoch seconds; identifiers are
ARN-shaped in a ``local`` region of account ``000000000000``.

The project's own (``-o json`` of ``reconcile``, ``plan``, ``validate``, ``classify``,
``status``, and the ``reconcile.finished`` log line) use the same PascalCase style. They take
what the runtime returns through the small read-only protocols below, so this module needs
nothing but the core.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from reconciler.core.arns import flywheel_arn, model_arn
from reconciler.core.layout import Workspace
from reconciler.core.state import IterationRecord, ModelMetrics, Observed, PromotionRecord

if TYPE_CHECKING:
    from reconciler.core.actions import Plan
    from reconciler.core.conditions import Condition
    from reconciler.core.degradation import Degradation, LabelDrop
    from reconciler.core.spec import FlywheelSpec


def data_lake_uri(name: str) -> str:
    return f"{Workspace(name).lake}/"


def pascal_keys(value: Any) -> Any:
    """A spec's camelCase mapping in Comprehend's PascalCase (``vpcConfig`` -> ``VpcConfig``)."""
    return _recase(value, str.upper)


def camel_keys(value: Any) -> Any:
    """Comprehend's PascalCase members as a spec's camelCase (``VpcConfig`` -> ``vpcConfig``)."""
    return _recase(value, str.lower)


def _recase(value: Any, first: Any) -> Any:
    if isinstance(value, dict):
        return {first(key[:1]) + key[1:]: _recase(item, first) for key, item in value.items()}
    if isinstance(value, list):
        return [_recase(item, first) for item in value]
    return value


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
    """DescribeFlywheel's ``FlywheelProperties``: ``CREATING`` until a reconcile has adopted
    the flywheel (written its first status), then ``ACTIVE``; what CreateFlywheel declared
    (role, data lake, security) as it was declared."""
    status = observed.status
    latest = observed.latest
    settings = spec.comprehend
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
        "DataAccessRoleArn": settings.data_access_role_arn if settings else None,
        "DataLakeS3Uri": (settings.data_lake_s3_uri if settings and settings.data_lake_s3_uri
                          else data_lake_uri(spec.name)),
        "DataSecurityConfig": (pascal_keys(settings.data_security_config.model_dump(
            mode="json", by_alias=True, exclude_none=True))
            if settings and settings.data_security_config else {}),
        "Status": "ACTIVE" if status else "CREATING",
        "ModelType": "DOCUMENT_CLASSIFIER",
        "Message": message,
        "CreationTime": status.creation_time if status else None,
        "LastModifiedTime": _last_modified(observed),
        "LatestFlywheelIteration": latest.flywheel_iteration_id if latest else None,
    }
    return {key: value for key, value in props.items() if value is not None}


SUMMARY_KEYS = ("FlywheelArn", "ActiveModelArn", "DataLakeS3Uri", "Status", "ModelType",
                "Message", "CreationTime", "LastModifiedTime", "LatestFlywheelIteration")


def flywheel_summary(spec: FlywheelSpec, observed: Observed, message: str) -> dict[str, Any]:
    return summary_of(flywheel_properties(spec, observed, message))


def summary_of(props: dict[str, Any]) -> dict[str, Any]:
    """A ``FlywheelSummary``: the properties ListFlywheels shows."""
    return {key: props[key] for key in SUMMARY_KEYS if key in props}


def _last_modified(observed: Observed) -> float | None:
    times = [t for it in observed.iterations for t in (it.creation_time, it.end_time) if t]
    if observed.status:
        times.append(observed.status.creation_time)
        times.extend(p.time for p in observed.status.promotions)
    return max(times, default=None)


# the project's shapes --------------------------------------------------------------------------


class Outcome(Protocol):
    """One flywheel's part of a reconcile (``runtime.reconcile.FlywheelResult``)."""

    @property
    def name(self) -> str: ...
    @property
    def spec_file(self) -> str: ...
    @property
    def plan(self) -> Plan | None: ...
    @property
    def iteration(self) -> IterationRecord | None: ...
    @property
    def promotions(self) -> list[PromotionRecord]: ...
    @property
    def error(self) -> Exception | None: ...
    @property
    def busy(self) -> bool: ...
    @property
    def stopped(self) -> bool: ...


class Result(Protocol):
    """A whole reconcile (``runtime.reconcile.ReconcileResult``)."""

    @property
    def flywheels(self) -> Sequence[Outcome]: ...
    @property
    def errors(self) -> Sequence[Exception]: ...
    @property
    def all_errors(self) -> Sequence[Exception]: ...


class PlanView(Protocol):
    """One flywheel as ``flywheel plan`` sees it (``runtime.queries.FlywheelView``)."""

    @property
    def name(self) -> str: ...
    @property
    def plan(self) -> Plan | None: ...
    @property
    def error(self) -> Exception | None: ...


PlanState = Literal["ERROR", "SUSPENDED", "PENDING", "UP_TO_DATE"]


def reconcile_response(result: Result) -> dict[str, Any]:
    """``flywheel reconcile -o json``."""
    return {
        "Flywheels": [
            {
                "FlywheelName": f.name,
                "SpecFile": f.spec_file,
                "Iteration": iteration_properties(f.iteration) if f.iteration else None,
                "Promotions": [p.to_json_dict() for p in f.promotions],
                "Busy": f.busy,
                "Notes": list(f.plan.notes) if f.plan else [],
                "Error": str(f.error) if f.error else None,
            }
            for f in result.flywheels
        ],
        "Errors": [str(e) for e in result.errors],
    }


def reconcile_counts(result: Result) -> dict[str, Any]:
    """The counts of one reconcile: the last line of ``--log-format json``, and its summary."""
    return {"event": "reconcile.finished", "flywheels": len(result.flywheels),
            "iterations": sum(1 for f in result.flywheels if f.iteration),
            "promotions": sum(len(f.promotions) for f in result.flywheels),
            "errors": len(result.all_errors),
            "failed": [f.name for f in result.flywheels if f.error],
            "busy": [f.name for f in result.flywheels if f.busy],
            "stopped": [f.name for f in result.flywheels if f.stopped]}


def plan_state(view: PlanView) -> PlanState:
    """What ``flywheel plan`` says of one flywheel."""
    if view.error is not None:
        return "ERROR"
    assert view.plan is not None
    if view.plan.suspended:
        return "SUSPENDED"
    return "PENDING" if view.plan.actions else "UP_TO_DATE"


def plan_response(views: Iterable[PlanView]) -> dict[str, Any]:
    """``flywheel plan -o json``."""
    flywheels = []
    for v in views:
        entry: dict[str, Any] = {"FlywheelName": v.name, "State": plan_state(v)}
        if v.error is not None:
            entry["Error"] = str(v.error)
        if v.plan is not None:
            entry["Actions"] = [a.to_json() for a in v.plan.actions]
            entry["Notes"] = list(v.plan.notes)
        flywheels.append(entry)
    states = [f["State"] for f in flywheels]
    return {"Flywheels": flywheels, "Pending": states.count("PENDING"),
            "Errors": states.count("ERROR"), "Suspended": states.count("SUSPENDED")}


def validate_response(lines: list[str]) -> dict[str, Any]:
    """``flywheel validate -o json``: one line per problem."""
    return {"Valid": not lines, "Errors": lines}


def conditions_json(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    """A flywheel's conditions as the project's JSON adds them to Comprehend's shapes
    (``Type``, ``Status``, ``Reason``, ``Message``; Comprehend has no such member)."""
    return [{"Type": c.type.value, "Status": c.status, "Reason": c.reason,
             "Message": c.message} for c in conditions]


def degradation_json(found: Degradation, drops: Iterable[LabelDrop]) -> dict[str, Any]:
    """The degradation alarm's figures (:class:`~reconciler.core.degradation.Degradation`) and
    the labels that broke, for ``describe -o json``."""
    return {**pascal_keys(found.to_json()),
            "Labels": [{"Label": d.label, "F1AtPromotion": d.before, "F1Now": d.after,
                        "Drop": d.drop} for d in drops]}


def list_flywheels_response(flywheels: Iterable[tuple[FlywheelSpec, Observed, str]]
                            ) -> dict[str, Any]:
    """``flywheel list -o json`` (ListFlywheels): (spec, observed, message) per flywheel."""
    return {"FlywheelSummaryList": [flywheel_summary(spec, observed, message)
                                    for spec, observed, message in flywheels]}


class Scored(Protocol):
    """One classified document (``runtime.classify.Classification``)."""

    @property
    def text(self) -> str: ...
    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def scores(self) -> dict[str, float]: ...
    @property
    def score_kind(self) -> str: ...
    @property
    def raw_scores(self) -> dict[str, float] | None: ...
    @property
    def raw_score_kind(self) -> str | None: ...


def classify_response(version: str, results: Iterable[Scored]) -> dict[str, Any]:
    """``flywheel classify -o json``: Comprehend's ClassifyDocument ``Labels``/``Classes``
    per text, with the model version and the kind of score."""
    def entry(c: Scored, name: str) -> dict[str, object]:
        raw = {} if c.raw_scores is None else {"RawScore": c.raw_scores[name]}
        return {"Name": name, "Score": c.scores[name], **raw}

    return {"ModelVersion": version, "Results": [
        {"Text": c.text, "Labels": [entry(c, n) for n in c.labels],
         "Classes": [entry(c, n) for n in c.scores],
         "ScoreKind": c.score_kind,
         **({"RawScoreKind": c.raw_score_kind} if c.raw_scores is not None else {})}
        for c in results]}


def watch_status_response(running: bool, status: Mapping[str, Any] | None) -> dict[str, Any]:
    """``flywheel status -o json``: whether a daemon runs, and its status file."""
    return {"Running": running, "Status": status}
