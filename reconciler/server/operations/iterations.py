"""StartFlywheelIteration, DescribeFlywheelIteration, ListFlywheelIterationHistory.

StartFlywheelIteration records a request and answers with the id the iteration will have; the
watch daemon (or the next reconcile) runs it. Until it starts, the iteration reads as
``TRAINING`` with a message saying it waits for the reconciler, so a client polling
DescribeFlywheelIteration sees it go TRAINING -> EVALUATING -> COMPLETED or FAILED.
"""

from __future__ import annotations

import calendar
import time
from typing import Any

from reconciler.api import declaring
from reconciler.core.arns import flywheel_arn
from reconciler.core.responses import iteration_properties
from reconciler.core.state import IterationRecord
from reconciler.server.context import Answer, Context, Params, arn, idempotent
from reconciler.server.operations.common import check_time_filter
from reconciler.server.paging import page
from reconciler.server.protocol import not_found

WAITING = "Waiting for the reconciler to start this iteration (StartFlywheelIteration)."


@idempotent("StartFlywheelIteration")
def start_flywheel_iteration(ctx: Context, params: Params) -> Answer:
    name = arn(params, "FlywheelArn", "flywheel").name
    return {"FlywheelArn": flywheel_arn(name),
            "FlywheelIterationId": declaring.start_iteration(ctx.repo, name)}


def _pending(name: str, iteration_id: str) -> dict[str, Any]:
    return {"FlywheelArn": flywheel_arn(name), "FlywheelIterationId": iteration_id,
            "CreationTime": float(calendar.timegm(time.strptime(iteration_id,
                                                                "%Y%m%dT%H%M%SZ"))),
            "Status": "TRAINING", "Message": WAITING}


def _history(ctx: Context, name: str) -> list[dict[str, Any]]:
    """Every iteration, newest first, with one asked for but not started yet on top."""
    observed = ctx.repo.view(name, records=True).observed
    records = list(observed.iterations)
    listed = [iteration_properties(r) for r in reversed(records)]
    requested = declaring.requested_iteration(ctx.repo, name, observed)
    if requested is not None and not _answered(records, requested):
        listed.insert(0, _pending(name, requested))
    return listed


def _answered(records: list[IterationRecord], requested: str) -> bool:
    return any(r.flywheel_iteration_id == requested or
               (r.iteration_request or "").startswith(requested + "-") for r in records)


def describe_flywheel_iteration(ctx: Context, params: Params) -> Answer:
    name = arn(params, "FlywheelArn", "flywheel").name
    wanted = params["FlywheelIterationId"]
    observed = ctx.repo.view(name, records=True).observed
    records = list(observed.iterations)
    for record in records:
        if record.flywheel_iteration_id == wanted:
            return {"FlywheelIterationProperties": iteration_properties(record)}
    for record in records:  # asked for with this id, started under another (a race)
        if (record.iteration_request or "").startswith(wanted + "-"):
            return {"FlywheelIterationProperties": iteration_properties(record)}
    if declaring.requested_iteration(ctx.repo, name, observed) == wanted:
        return {"FlywheelIterationProperties": _pending(name, wanted)}
    raise not_found(f"flywheel {name!r} has no iteration {wanted}")


def list_flywheel_iteration_history(ctx: Context, params: Params) -> Answer:
    name = arn(params, "FlywheelArn", "flywheel").name
    query = {k: v for k, v in (params.get("Filter") or {}).items() if v is not None}
    listed = [p for p in _history(ctx, name) if check_time_filter(p.get("CreationTime"), query)]
    chosen, token = page(listed, lambda p: p["FlywheelIterationId"], params,
                         "ListFlywheelIterationHistory", {"flywheel": name, **query})
    return {"FlywheelIterationPropertiesList": chosen, **({"NextToken": token} if token else {})}


OPERATIONS = {
    "StartFlywheelIteration": start_flywheel_iteration,
    "DescribeFlywheelIteration": describe_flywheel_iteration,
    "ListFlywheelIterationHistory": list_flywheel_iteration_history,
}
