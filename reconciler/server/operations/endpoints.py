"""CreateEndpoint, DescribeEndpoint, ListEndpoints, UpdateEndpoint, DeleteEndpoint, and
ClassifyDocument on an endpoint.

An endpoint is declared state (``endpoints/<name>.yaml``). Created with a ``FlywheelArn`` it
serves the flywheel's active model and follows every promotion, as Comprehend's do; created with
a ``ModelArn`` it serves that version. It is IN_SERVICE while it has a model to serve: there is
no capacity to provision, so ``DesiredInferenceUnits`` is kept and reported, not enforced.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from reconciler import api
from reconciler.api import FlywheelView, declaring
from reconciler.api.declaring import EndpointView
from reconciler.core.arns import endpoint_arn, flywheel_arn, model_arn
from reconciler.core.endpoints import EndpointSpec
from reconciler.core.spec import Mode
from reconciler.errors import FlywheelError, NotFoundError
from reconciler.server.context import Answer, Context, Params, arn, idempotent
from reconciler.server.operations.common import (
    check_time_filter,
    spec_validation_error,
    tags_from,
)
from reconciler.server.paging import page
from reconciler.server.protocol import AwsError, invalid


def _resolve(ctx: Context, name: str) -> tuple[EndpointView, FlywheelView | None]:
    """Endpoint ``name`` with what it serves, and its flywheel's view (None: not declared)."""
    endpoint = ctx.repo.catalog.endpoint(name)
    try:
        flywheel: FlywheelView | None = ctx.repo.view(endpoint.flywheel)
    except NotFoundError:
        flywheel = None
    active = {} if flywheel is None else {endpoint.flywheel: flywheel.active_model}
    return ctx.repo.catalog.view_of(endpoint, active), flywheel


def _serving(ctx: Context, name: str) -> EndpointView:
    return _resolve(ctx, name)[0]


def endpoint_properties(view: EndpointView) -> dict[str, Any]:
    endpoint = view.endpoint
    model = model_arn(endpoint.flywheel, view.serving)
    if not view.flywheel_declared:
        status, message = "FAILED", f"flywheel {endpoint.flywheel!r} is not declared"
    elif view.serving is None:
        status, message = "CREATING", (f"waiting for flywheel {endpoint.flywheel!r}'s first "
                                       "active model")
    else:
        status, message = "IN_SERVICE", None
    created = view.declared.time if view.declared else view.last_modified
    props: dict[str, Any] = {
        "EndpointArn": endpoint_arn(endpoint.name),
        "Status": status,
        "Message": message,
        "ModelArn": model,
        "DesiredModelArn": model,
        "DesiredInferenceUnits": endpoint.desired_inference_units,
        "CurrentInferenceUnits": endpoint.desired_inference_units if view.serving else None,
        "CreationTime": created,
        "LastModifiedTime": view.last_modified or created,
        "DataAccessRoleArn": endpoint.data_access_role_arn,
        "DesiredDataAccessRoleArn": endpoint.data_access_role_arn,
        "FlywheelArn": None if endpoint.model_version else flywheel_arn(endpoint.flywheel),
    }
    return {key: value for key, value in props.items() if value is not None}


def _target(params: Params, model_key: str) -> tuple[str, str | None]:
    """(flywheel, fixed version or None) from ``FlywheelArn`` or a model version ARN."""
    if params.get("FlywheelArn") and params.get(model_key):
        raise invalid(f"give FlywheelArn (follow the active model) or {model_key} (one "
                      "version), not both")
    if params.get("FlywheelArn"):
        return arn(params, "FlywheelArn", "flywheel").name, None
    if params.get(model_key):
        model = arn(params, model_key, "model")
        if model.child is None:
            raise invalid(f"{model_key}: name a model version (…/version/vN)")
        return model.name, model.child
    raise invalid(f"give FlywheelArn (the endpoint follows its active model) or {model_key}")


@idempotent("CreateEndpoint")
def create_endpoint(ctx: Context, params: Params) -> Answer:
    flywheel, version = _target(params, "ModelArn")
    try:
        endpoint = EndpointSpec.model_validate({
            "name": params["EndpointName"], "flywheel": flywheel, "modelVersion": version,
            "desiredInferenceUnits": params["DesiredInferenceUnits"],
            "dataAccessRoleArn": params.get("DataAccessRoleArn"),
            "tags": tags_from(params.get("Tags"))})
    except ValidationError as exc:
        raise spec_validation_error(exc) from None
    declaring.create_endpoint(ctx.repo, endpoint)
    view = _serving(ctx, endpoint.name)
    return {"EndpointArn": endpoint_arn(endpoint.name),
            **({"ModelArn": model_arn(flywheel, view.serving)} if view.serving else {})}


def describe_endpoint(ctx: Context, params: Params) -> Answer:
    name = arn(params, "EndpointArn", "endpoint").name
    return {"EndpointProperties": endpoint_properties(_serving(ctx, name))}


def list_endpoints(ctx: Context, params: Params) -> Answer:
    query = {k: v for k, v in (params.get("Filter") or {}).items() if v is not None}
    active = {v.name: v.active_model for v in api.list_flywheels(ctx.repo)}
    listed = []
    for view in ctx.repo.catalog.endpoints(active):
        props = endpoint_properties(view)
        if any(query.get(k) not in (None, props.get(k)) for k in ("Status", "ModelArn")):
            continue
        if check_time_filter(props.get("CreationTime"), query):
            listed.append(props)
    chosen, token = page(listed, lambda p: p["EndpointArn"], params, "ListEndpoints", query)
    return {"EndpointPropertiesList": chosen, **({"NextToken": token} if token else {})}


def update_endpoint(ctx: Context, params: Params) -> Answer:
    name = arn(params, "EndpointArn", "endpoint").name
    update: dict[str, Any] = {}
    if params.get("FlywheelArn") or params.get("DesiredModelArn"):
        flywheel, version = _target(params, "DesiredModelArn")
        update.update(flywheel=flywheel, modelVersion=version)
    if params.get("DesiredInferenceUnits") is not None:
        update["desiredInferenceUnits"] = params["DesiredInferenceUnits"]
    if params.get("DesiredDataAccessRoleArn"):
        update["dataAccessRoleArn"] = params["DesiredDataAccessRoleArn"]

    def change(current: EndpointSpec) -> EndpointSpec:
        try:
            return EndpointSpec.model_validate({**current.model_dump(by_alias=True), **update,
                                                "tags": current.tags})
        except ValidationError as exc:
            raise spec_validation_error(exc) from None

    declaring.update_endpoint(ctx.repo, name, change)
    view = _serving(ctx, name)
    if view.serving is None:
        return {}
    return {"DesiredModelArn": model_arn(view.endpoint.flywheel, view.serving)}


def delete_endpoint(ctx: Context, params: Params) -> Answer:
    declaring.delete_endpoint(ctx.repo, arn(params, "EndpointArn", "endpoint").name)
    return {}


def classify_document(ctx: Context, params: Params) -> Answer:
    name = arn(params, "EndpointArn", "endpoint").name
    if params.get("Bytes") is not None or params.get("DocumentReaderConfig") is not None:
        raise invalid("Bytes (PDF, Word, images) is not supported: send the document as Text")
    text = params.get("Text")
    if not text:
        raise invalid("Text: give the document to classify")
    size = len(text.encode("utf-8"))
    if size > ctx.max_text_bytes:
        raise AwsError("TextSizeLimitExceededException", "Input text size exceeds limit. Max "
                       f"length of request text allowed is {ctx.max_text_bytes} bytes while in "
                       f"this request the text size is {size} bytes")
    view, found = _resolve(ctx, name)
    if view.serving is None or found is None or found.spec_file is None:
        raise AwsError("ResourceUnavailableException", f"endpoint {name!r} has no model to "
                       f"serve yet (flywheel {view.endpoint.flywheel!r} has no active model)")
    _, results = api.classify(ctx.repo, view.endpoint.flywheel, [text], view.serving)
    scored = [{"Name": label, "Score": score} for label, score in results[0].scores.items()]
    key = "Labels" if found.spec_file.spec.task.mode is Mode.MULTI_LABEL else "Classes"
    return {key: scored}


def warm_up(ctx: Context) -> list[str]:
    """Load every endpoint's model (and scikit-learn) now, so that no client's first
    ClassifyDocument pays seconds for it; the endpoints warmed."""
    active = {v.name: v.active_model for v in api.list_flywheels(ctx.repo)}
    warmed = []
    for view in ctx.repo.catalog.endpoints(active):
        if view.serving is None:
            continue
        try:
            api.classify(ctx.repo, view.endpoint.flywheel, ["warm-up"], view.serving)
        except FlywheelError:
            continue  # the first real call reports it, with the AWS error shape
        warmed.append(view.endpoint.name)
    return warmed


OPERATIONS = {
    "CreateEndpoint": create_endpoint,
    "DescribeEndpoint": describe_endpoint,
    "ListEndpoints": list_endpoints,
    "UpdateEndpoint": update_endpoint,
    "DeleteEndpoint": delete_endpoint,
    "ClassifyDocument": classify_document,
}
