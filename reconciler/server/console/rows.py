"""What the console's tables show, computed from views and records (no I/O, no HTML).

Each page's template only lays these out; every figure, status and link is decided here, so a
unit test can check a row without a browser, and the list and the flywheel page agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from reconciler.api import FlywheelView
from reconciler.core.conditions import Condition
from reconciler.core.state import (
    DataDrift,
    DatasetDrift,
    IterationRecord,
    IterationStatus,
    ModelMetrics,
    Observed,
)
from reconciler.server.console.chart import Point

#: Figures closer than this count as equal for "differences only".
SAME = 5e-5


def flywheel_href(name: str) -> str:
    return f"/flywheels/{quote(name, safe='')}"


def iteration_href(name: str, iteration_id: str) -> str:
    return f"{flywheel_href(name)}/iterations/{quote(iteration_id, safe='')}"


def when(epoch: float | None) -> str:
    """A record's time as people read it in a table (UTC, to the second)."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def took(start: float | None, end: float | None) -> str:
    """How long something ran, as people say it: ``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    if start is None or end is None or end < start:
        return ""
    seconds = round(end - start)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def figure(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def delta(new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return ""
    change = new - old
    return "±0.0000" if abs(change) < SAME else f"{change:+.4f}"


@dataclass(frozen=True)
class Pill:
    """A status shown as a coloured label: ``tone`` is good, bad, busy, warn or idle."""

    text: str
    tone: str
    title: str = ""


STATUS_TONES = {"COMPLETED": "good", "FAILED": "bad", "TRAINING": "busy", "EVALUATING": "busy",
                "STOP_REQUESTED": "warn", "STOPPED": "idle", "ACTIVE": "good",
                "CREATING": "busy", "UPDATING": "busy", "DELETING": "warn"}


def status_pill(status: str, title: str = "") -> Pill:
    return Pill(status, STATUS_TONES.get(status, "idle"), title)


# the flywheels list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FlywheelRow:
    name: str
    #: None for a spec file that does not load and names no flywheel (its message says why).
    href: str | None
    model_type: str
    status: Pill
    active_version: str | None
    active_f1: str
    latest_id: str | None
    latest_href: str | None
    latest_status: Pill | None
    latest_trained: str
    latest_evaluated: str
    conditions: tuple[Pill, ...]
    sync: Pill
    message: str


def model_type(view: FlywheelView) -> str:
    if view.spec_file is None:
        return "?"
    mode = view.spec_file.spec.task.mode.value
    return "Classifier · " + ("multi-class" if mode == "MULTI_CLASS" else "multi-label")


CONDITION_TONES = {"Ready": "good", "Stalled": "bad", "Degraded": "bad", "DataDrift": "warn"}


def condition_tone(condition: Condition) -> str:
    """A condition's colour: one that does not hold is a warning; Reconciling is busy."""
    if not condition.status:
        return "warn"
    return CONDITION_TONES.get(condition.type.value, "busy")


def conditions(view: FlywheelView) -> tuple[Pill, ...]:
    """Ready, and whichever of Reconciling, Stalled, Degraded, DataDrift hold, each with why."""
    pills = []
    for condition in view.conditions:
        if condition.type.value == "Ready":
            pills.append(Pill("Ready" if condition.status else f"Not ready: {condition.reason}",
                              condition_tone(condition), condition.message))
        elif condition.status:
            pills.append(Pill(condition.type.value, condition_tone(condition),
                              condition.message))
    return tuple(pills)


def sync(view: FlywheelView, uncommitted: frozenset[str] | None) -> Pill:
    """Whether what the flywheel runs on is what git holds, Argo-style: Synced, or OutOfSync
    with the reason (edits not committed, an iteration or a promotion due)."""
    if view.spec_file is None:
        return Pill("Unknown", "bad", "the spec does not load")
    if uncommitted is None:
        return Pill("No git", "idle", "the repository is not a git repository")
    paths = [view.spec_file.path, *(d.path for d in view.spec_file.spec.datasets)]
    edited = [p for p in paths if p in uncommitted]
    if edited:
        return Pill("OutOfSync", "warn", "not committed: " + ", ".join(edited[:5]))
    if view.plan is not None and view.plan.actions:
        return Pill("OutOfSync", "warn", "; ".join(a.summary() for a in view.plan.actions))
    return Pill("Synced", "good", "the records answer the committed spec and data")


def _href_of(view: FlywheelView) -> str | None:
    """A flywheel's page; a spec that does not load has one only when it names its flywheel
    (that page shows the error), not when it is listed under its file's path."""
    if view.spec_file is None and (view.error is None or view.error.flywheel != view.name):
        return None
    return flywheel_href(view.name)


def active_f1(observed: Observed, version: str | None) -> str:
    measured = observed.measured(version)
    return figure(measured[0]) if measured else ""


def flywheel_row(view: FlywheelView, props: dict[str, Any],
                 uncommitted: frozenset[str] | None) -> FlywheelRow:
    latest = view.observed.latest
    active = view.active_model
    return FlywheelRow(
        name=view.name, href=_href_of(view), model_type=model_type(view),
        status=status_pill(str(props.get("Status", "FAILED")), str(props.get("Message", ""))),
        active_version=active, active_f1=active_f1(view.observed, active),
        latest_id=latest.flywheel_iteration_id if latest else None,
        latest_href=iteration_href(view.name, latest.flywheel_iteration_id) if latest else None,
        latest_status=status_pill(latest.status.value, latest.message) if latest else None,
        latest_trained=figure(latest.trained_f1) if latest else "",
        latest_evaluated=figure(latest.active_f1) if latest else "",
        conditions=conditions(view), sync=sync(view, uncommitted), message=view.message)


# the iterations table -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCell:
    version: str | None
    f1: str
    precision: str
    recall: str
    accuracy: str


def model_cell(version: str | None, metrics: ModelMetrics | None) -> ModelCell:
    m = metrics or ModelMetrics()
    return ModelCell(version, figure(m.average_f1_score), figure(m.average_precision),
                     figure(m.average_recall), figure(m.average_accuracy))


@dataclass(frozen=True)
class IterationRow:
    id: str
    href: str | None
    status: Pill
    started: str
    ended: str
    took: str
    message: str
    evaluated: ModelCell
    trained: ModelCell
    promoted: bool
    #: The trained version may be made active (it exists and is not active already).
    can_activate: bool


def iteration_rows(view: FlywheelView, requested: str | None) -> list[IterationRow]:
    """Newest first; an iteration asked for and not started yet on top, as the API lists it."""
    observed = view.observed
    active = view.active_model
    rows = []
    if requested is not None and not any(r.flywheel_iteration_id == requested
                                         for r in observed.iterations):
        rows.append(IterationRow(requested, None, Pill("REQUESTED", "busy"), "", "", "",
                                 "Waiting for the reconciler to start this iteration.",
                                 model_cell(None, None), model_cell(None, None), False, False))
    for record in reversed(observed.iterations):
        trained = record.trained_model_version
        rows.append(IterationRow(
            id=record.flywheel_iteration_id,
            href=iteration_href(view.name, record.flywheel_iteration_id),
            status=status_pill(record.status.value), started=when(record.creation_time),
            ended=when(record.end_time), took=took(record.creation_time, record.end_time),
            message=record.message,
            evaluated=model_cell(record.evaluated_model_version, record.evaluated_model_metrics),
            trained=model_cell(trained, record.trained_model_metrics),
            promoted=bool(record.decision and record.decision.promote),
            can_activate=trained is not None and trained in observed.versions
            and trained != active))
    return rows


def running(observed: Observed) -> IterationRecord | None:
    """The iteration in progress, if any."""
    return next((r for r in reversed(observed.iterations) if not r.status.terminal), None)


STAGES = {IterationStatus.TRAINING: "training the new version (train stage)",
          IterationStatus.EVALUATING: "scoring both versions on the test data (evaluate stage)",
          IterationStatus.STOP_REQUESTED: "stopping"}


def chart_points(view: FlywheelView) -> list[Point]:
    return [Point(r.flywheel_iteration_id, r.trained_model_version, r.trained_f1,
                  r.evaluated_model_version, r.active_f1,
                  bool(r.decision and r.decision.promote),
                  iteration_href(view.name, r.flywheel_iteration_id))
            for r in view.observed.completed()]


@dataclass(frozen=True)
class PromotionRow:
    time: str
    version: str
    previous: str | None
    kind: str
    reason: str
    iteration_id: str | None
    iteration_href: str | None
    commit: str | None


def promotion_rows(view: FlywheelView) -> list[PromotionRow]:
    """Newest first; each with its reason and the commit it was decided from."""
    status = view.observed.status
    if status is None:
        return []
    rows = []
    for p in reversed(status.promotions):
        rows.append(PromotionRow(
            when(p.time), str(p.version), str(p.previous_version) if p.previous_version else None,
            p.kind.value, p.reason, p.flywheel_iteration_id,
            iteration_href(view.name, p.flywheel_iteration_id) if p.flywheel_iteration_id
            else None, p.source_revision.commit if p.source_revision else None))
    return rows


# one iteration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRow:
    label: str
    support: str
    challenger: tuple[str, str, str]  # precision, recall, F1
    champion: tuple[str, str, str]
    f1_delta: str
    differs: bool
    tone: str  # better | worse | same


def _per_label(evaluation: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not evaluation:
        return {}
    return {str(row.get("label")): row for row in evaluation.get("perLabel") or []
            if isinstance(row, dict)}


def _num(row: dict[str, Any] | None, key: str) -> float | None:
    value = (row or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def label_rows(trained: dict[str, Any] | None, active: dict[str, Any] | None) -> list[LabelRow]:
    """Challenger (trained) against champion (active) per label, in the evaluation's order."""
    new, old = _per_label(trained), _per_label(active)
    rows = []
    for label in dict.fromkeys([*new, *old]):
        n, o = new.get(label), old.get(label)
        figures_new = tuple(_num(n, k) for k in ("precision", "recall", "f1Score"))
        figures_old = tuple(_num(o, k) for k in ("precision", "recall", "f1Score"))
        change = (figures_new[2] - figures_old[2]
                  if figures_new[2] is not None and figures_old[2] is not None else None)
        differs = o is None or n is None or any(
            a is None or b is None or abs(a - b) >= SAME
            for a, b in zip(figures_new, figures_old, strict=True))
        tone = "same" if change is None or abs(change) < SAME else (
            "better" if change > 0 else "worse")
        support = (n or o or {}).get("support")
        rows.append(LabelRow(label, "" if support is None else str(support),
                             _three(figures_new), _three(figures_old),
                             delta(figures_new[2], figures_old[2]), differs, tone))
    return rows


def _three(values: Sequence[float | None]) -> tuple[str, str, str]:
    return figure(values[0]), figure(values[1]), figure(values[2])


@dataclass(frozen=True)
class Confusion:
    labels: list[str]
    rows: list[list[int]]
    #: The largest off-diagonal count, to shade the cells relative to it.
    worst: int = 0
    totals: list[int] = field(default_factory=list)


def confusion(evaluation: dict[str, Any] | None) -> Confusion | None:
    """The evaluation's confusion matrix (true label per row, predicted per column), if it has
    a well-formed square one."""
    if not evaluation:
        return None
    labels = [str(label) for label in evaluation.get("labels") or []]
    matrix = evaluation.get("confusionMatrix")
    if not labels or not isinstance(matrix, list) or len(matrix) != len(labels):
        return None
    rows: list[list[int]] = []
    for row in matrix:
        if not isinstance(row, list) or len(row) != len(labels) or not all(
                isinstance(c, int) for c in row):
            return None
        rows.append(list(row))
    worst = max((c for i, r in enumerate(rows) for j, c in enumerate(r) if i != j), default=0)
    return Confusion(labels, rows, worst, [sum(r) for r in rows])


def shade(count: int, total: int, diagonal: bool) -> str:
    """A cell's CSS class: how large a share of its row it holds, five steps."""
    if total <= 0 or count == 0:
        return "c0"
    step = min(4, int(count / total * 5))
    return f"{'d' if diagonal else 'e'}{step}"


def drift_rows(drift: DataDrift | None) -> list[tuple[str, DatasetDrift]]:
    """An iteration's drift table: each new dataset, then all new TRAIN data when several."""
    if drift is None:
        return []
    listed = list(drift.datasets.items())
    if drift.new_train_data is not None and len(listed) > 1:
        listed.append(("all new TRAIN data", drift.new_train_data))
    return listed
