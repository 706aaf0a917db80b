"""CreateFlywheel, DescribeFlywheel, UpdateFlywheel, DeleteFlywheel, ListFlywheels."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from reconciler import api
from reconciler.api import FlywheelView, declaring
from reconciler.core.arns import flywheel_arn, model_arn
from reconciler.core.responses import camel_keys, flywheel_properties, summary_of
from reconciler.core.spec import ComprehendSettings, FlywheelSpec
from reconciler.server.context import Answer, Context, Params, arn, idempotent
from reconciler.server.operations.common import (
    check_time_filter,
    one_filter,
    spec_validation_error,
    tags_from,
)
from reconciler.server.paging import page
from reconciler.server.protocol import AwsError, invalid


def properties(ctx: Context, view: FlywheelView) -> dict[str, Any]:
    """FlywheelProperties of a flywheel (FAILED with its error when its spec does not load)."""
    if view.spec_file is None:
        return {"FlywheelArn": flywheel_arn(view.name), "Status": "FAILED",
                "ModelType": "DOCUMENT_CLASSIFIER", "Message": str(view.error)}
    props = flywheel_properties(view.spec_file.spec, view.observed, view.message)
    active = model_arn(view.name, view.active_model)
    if active is not None:
        props["ActiveModelArn"] = active
    if "CreationTime" not in props:
        declared = ctx.repo.catalog.declared([view.spec_file.path]).get(view.spec_file.path)
        if declared is not None:
            props["CreationTime"] = declared.time
    return props


@idempotent("CreateFlywheel")
def create_flywheel(ctx: Context, params: Params) -> Answer:
    return {"FlywheelArn": flywheel_arn(_create(ctx, params).name)}


def _create(ctx: Context, params: Params) -> FlywheelSpec:
    if params.get("ActiveModelArn"):
        raise invalid("ActiveModelArn at creation (a flywheel for an existing model) is not "
                      "supported: create the flywheel with TaskConfig and ModelType, then add "
                      "its data with CreateDataset")
    model_type = params.get("ModelType")
    task = params.get("TaskConfig")
    if model_type is None or task is None:
        raise invalid("set ModelType and TaskConfig: a new flywheel trains a new model")
    if model_type != "DOCUMENT_CLASSIFIER":
        raise invalid(f"ModelType {model_type} is not supported yet: this server trains "
                      "DOCUMENT_CLASSIFIER models")
    classification = task.get("DocumentClassificationConfig")
    if classification is None or task.get("EntityRecognitionConfig") is not None:
        raise invalid("a DOCUMENT_CLASSIFIER flywheel needs TaskConfig."
                      "DocumentClassificationConfig (and no EntityRecognitionConfig)")
    if not classification.get("Labels"):
        raise invalid("TaskConfig.DocumentClassificationConfig.Labels: list the flywheel's "
                      "labels (at least 2); they are fixed once it is created, as Comprehend's")
    if task["LanguageCode"] not in {"en", "es", "fr", "de", "it", "pt"}:
        raise AwsError("UnsupportedLanguageException", f"custom classification does not "
                       f"support language {task['LanguageCode']!r} (en, es, fr, de, it, pt)")
    data = {
        "name": params["FlywheelName"],
        "task": {"languageCode": task["LanguageCode"], "mode": classification["Mode"],
                 "labels": classification["Labels"]},
        "trigger": "request",  # iterate on StartFlywheelIteration, as Comprehend's do
        "tags": tags_from(params.get("Tags")),
        "comprehend": {"dataAccessRoleArn": params["DataAccessRoleArn"],
                       "dataLakeS3Uri": params["DataLakeS3Uri"],
                       **({"dataSecurityConfig": camel_keys(params["DataSecurityConfig"])}
                          if params.get("DataSecurityConfig") else {})},
    }
    try:
        spec = FlywheelSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_validation_error(exc) from None
    declaring.create_flywheel(ctx.repo, spec)
    return spec


def describe_flywheel(ctx: Context, params: Params) -> Answer:
    name = arn(params, "FlywheelArn", "flywheel").name
    return {"FlywheelProperties": properties(ctx, api.describe_flywheel(ctx.repo, name))}


def update_flywheel(ctx: Context, params: Params) -> Answer:
    name = arn(params, "FlywheelArn", "flywheel").name
    view = api.describe_flywheel(ctx.repo, name)
    assert view.spec_file is not None
    if params.get("ActiveModelArn"):
        model = arn(params, "ActiveModelArn", "model")
        if model.name != name or model.child is None:
            raise invalid(f"ActiveModelArn: {params['ActiveModelArn']} is not a model version "
                          f"of flywheel {name!r}")
        declaring.pin_active_model(ctx.repo, name, model.child)
    if params.get("DataAccessRoleArn") or params.get("DataSecurityConfig") is not None:
        declaring.change_settings(ctx.repo, name, lambda current: _updated(current, params))
    return {"FlywheelProperties": properties(ctx, api.describe_flywheel(ctx.repo, name))}


def _updated(current: ComprehendSettings, params: Params) -> ComprehendSettings:
    """UpdateFlywheel's rules: a top-level member left out stays as it is; a
    ``DataSecurityConfig`` given replaces its members (one left out becomes null, as
    Comprehend says), except the data lake's key, which no update changes."""
    data = current.model_dump(by_alias=True, exclude_none=True)
    if params.get("DataAccessRoleArn"):
        data["dataAccessRoleArn"] = params["DataAccessRoleArn"]
    if params.get("DataSecurityConfig") is not None:
        kept = current.data_security_config
        lake_key = kept.data_lake_kms_key_id if kept else None
        data["dataSecurityConfig"] = {**camel_keys(params["DataSecurityConfig"]),
                                      **({"dataLakeKmsKeyId": lake_key} if lake_key else {})}
    try:
        return ComprehendSettings.model_validate(data)
    except ValidationError as exc:
        raise spec_validation_error(exc) from None


def delete_flywheel(ctx: Context, params: Params) -> Answer:
    declaring.delete_flywheel(ctx.repo, arn(params, "FlywheelArn", "flywheel").name)
    return {}


def list_flywheels(ctx: Context, params: Params) -> Answer:
    query = one_filter(params.get("Filter"))
    if not query:  # names decide the page: the records are read for its flywheels only
        return _page_by_name(ctx, params)
    summaries = []
    for view in api.list_flywheels(ctx.repo):
        props = properties(ctx, view)
        if "Status" in query and props.get("Status") != query["Status"]:
            continue
        if not check_time_filter(props.get("CreationTime"), query):
            continue
        summaries.append(summary_of(props))
    chosen, token = page(summaries, lambda s: s["FlywheelArn"], params, "ListFlywheels", query)
    return {"FlywheelSummaryList": chosen, **({"NextToken": token} if token else {})}


def _page_by_name(ctx: Context, params: Params) -> Answer:
    """ListFlywheels without a filter: a page is a run of names (an ARN sorts as its name), so
    only its flywheels' properties are computed (a thousand flywheels, one page of them)."""
    found: dict[str, str | None] = {}

    def choose(names: list[str]) -> list[str]:
        chosen, found["token"] = page(names, flywheel_arn, params, "ListFlywheels", {})
        return chosen

    views = api.list_flywheels(ctx.repo, choose=choose)
    summaries = [summary_of(properties(ctx, view)) for view in views]
    token = found.get("token")
    return {"FlywheelSummaryList": summaries, **({"NextToken": token} if token else {})}


OPERATIONS = {
    "CreateFlywheel": create_flywheel,
    "DescribeFlywheel": describe_flywheel,
    "UpdateFlywheel": update_flywheel,
    "DeleteFlywheel": delete_flywheel,
    "ListFlywheels": list_flywheels,
}

__all__ = ["OPERATIONS", "properties"]
