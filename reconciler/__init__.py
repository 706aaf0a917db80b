"""flywheel-reconciler: keep text classifiers improving as labelled data arrives.

The public surface: :mod:`reconciler.api`'s use cases over a :class:`Repository`, the error tree
of :mod:`reconciler.errors`, and the records those return. Everything else is internal and may
move. Names are resolved on first use, so ``import reconciler`` (which every DVC stage process
does) costs nothing beyond this file::

    import reconciler
    repo = reconciler.open_repository("path/to/repo")
    for view in reconciler.list_flywheels(repo):
        print(view.name, view.observed.active_model)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.api import (
        LATEST,
        IterationDetail,
        PublishState,
        Repository,
        Suggestions,
        Validation,
        classify,
        describe_flywheel,
        describe_iteration,
        executor_from,
        init,
        install_hooks,
        list_flywheels,
        list_iterations,
        open_repository,
        plan,
        plot,
        publish,
        publish_state,
        reconcile,
        request_handled,
        request_iteration,
        suggest,
        uncommitted,
        validate,
        write_report,
    )
    from reconciler.core.spec import FlywheelSpec
    from reconciler.core.state import (
        FlywheelStatus,
        IterationRecord,
        IterationStatus,
        ModelMetrics,
        ModelVersionRecord,
        PromotionRecord,
    )
    from reconciler.errors import (
        ConflictError,
        DataError,
        FlywheelError,
        NotFoundError,
        PipelineError,
        SpecError,
        StateError,
        Stopped,
        TransientError,
    )
    from reconciler.runtime.classify import Classification
    from reconciler.runtime.queries import FlywheelView
    from reconciler.runtime.reconcile import FlywheelResult, ReconcileResult

__all__ = [
    "LATEST",
    "Classification",
    "ConflictError",
    "DataError",
    "FlywheelError",
    "FlywheelResult",
    "FlywheelSpec",
    "FlywheelStatus",
    "FlywheelView",
    "IterationDetail",
    "IterationRecord",
    "IterationStatus",
    "ModelMetrics",
    "ModelVersionRecord",
    "NotFoundError",
    "PipelineError",
    "PromotionRecord",
    "PublishState",
    "ReconcileResult",
    "Repository",
    "SpecError",
    "StateError",
    "Stopped",
    "Suggestions",
    "TransientError",
    "Validation",
    "classify",
    "describe_flywheel",
    "describe_iteration",
    "executor_from",
    "init",
    "install_hooks",
    "list_flywheels",
    "list_iterations",
    "open_repository",
    "plan",
    "plot",
    "publish",
    "publish_state",
    "reconcile",
    "request_handled",
    "request_iteration",
    "suggest",
    "uncommitted",
    "validate",
    "write_report",
]

#: Where each public name lives (the modules are imported on first use of one of their names).
_HOMES = {
    "reconciler.core.spec": ("FlywheelSpec",),
    "reconciler.core.state": ("FlywheelStatus", "IterationRecord", "IterationStatus",
                              "ModelMetrics", "ModelVersionRecord", "PromotionRecord"),
    "reconciler.errors": ("ConflictError", "DataError", "FlywheelError", "NotFoundError",
                          "PipelineError", "SpecError", "StateError", "Stopped",
                          "TransientError"),
    "reconciler.runtime.classify": ("Classification",),
    "reconciler.runtime.queries": ("FlywheelView",),
    "reconciler.runtime.reconcile": ("FlywheelResult", "ReconcileResult"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF.get(name, "reconciler.api")), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
