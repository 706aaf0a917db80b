"""Comprehend's operations, one module per resource; :data:`OPERATIONS` maps each name to its
function ``(context, params) -> answer``."""

from __future__ import annotations

from collections.abc import Callable

from reconciler.server.context import Answer, Context, Params
from reconciler.server.operations import datasets, endpoints, flywheels, iterations, tagging

Operation = Callable[[Context, Params], Answer]

OPERATIONS: dict[str, Operation] = {
    **flywheels.OPERATIONS,
    **iterations.OPERATIONS,
    **datasets.OPERATIONS,
    **endpoints.OPERATIONS,
    **tagging.OPERATIONS,
}
