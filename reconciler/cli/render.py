"""How results look to people: rich tables on a terminal, plain structured lines elsewhere."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reconciler.core.planner import Acknowledge, ApplyDecision, Iterate, Pin, Unpin, WriteSpec
from reconciler.core.state import IterationRecord, Observed
from reconciler.errors import FlywheelError
from reconciler.runtime.classify import Classification
from reconciler.runtime.events import (
    Event,
    StageStarted,
)
from reconciler.runtime.logs import LineWriter, action_text, event_fields
from reconciler.runtime.queries import FlywheelView
from reconciler.runtime.reconcile import ReconcileResult


def print_json(data: Any, out: TextIO = sys.stdout) -> None:
    """The one JSON printer of ``-o json``: strict JSON, so a NaN or an infinity (which no
    record may hold) is a one-line error instead of output that no JSON parser reads."""
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise FlywheelError(f"cannot print JSON: {exc} (a non-finite number in the output)") \
            from exc
    out.write(text + "\n")


def f1(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


# reconcile progress ---------------------------------------------------------------------------


class Progress:
    """A reconcile reporter: a spinner over the running stage on a terminal, lines otherwise."""

    def __init__(self, console: Console, fmt: str) -> None:
        self.console = console
        self.lines = LineWriter(console, fmt)
        self.status: Any = None

    def __call__(self, event: Event) -> None:
        fields = event_fields(event)
        if fields is None:
            return
        if self.lines.fmt == "pretty" and isinstance(event, StageStarted):
            text = f"[bold]{event.flywheel}[/] {event.iteration_id}: {event.stage}…"
            if self.status is None:
                self.status = self.console.status(text)
                self.status.start()
            else:
                self.status.update(text)
            return
        self.stop()
        self.lines.write(fields)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def summary_fields(result: ReconcileResult) -> dict[str, Any]:
    """The counts of one reconcile (the last line of ``--log-format json``)."""
    return {"event": "reconcile.finished", "flywheels": len(result.flywheels),
            "iterations": sum(1 for f in result.flywheels if f.iteration),
            "promotions": sum(len(f.promotions) for f in result.flywheels),
            "errors": len(result.all_errors),
            "failed": [f.name for f in result.flywheels if f.error],
            "busy": [f.name for f in result.flywheels if f.busy],
            "stopped": [f.name for f in result.flywheels if f.stopped]}


def reconcile_summary(result: ReconcileResult) -> str:
    counts = summary_fields(result)
    iterated, promoted, errors = counts["iterations"], counts["promotions"], counts["errors"]
    busy, stopped = len(counts["busy"]), len(counts["stopped"])
    if not iterated and not promoted and not errors and not busy and not stopped:
        return f"Nothing to do: {len(result.flywheels)} flywheel(s) up to date."
    parts = [f"{iterated} iteration(s)", f"{promoted} promotion(s)", f"{errors} error(s)"]
    if busy:
        parts.append(f"{busy} busy (another reconciler is on it)")
    if stopped:
        parts.append(f"{stopped} stopped (the next reconcile resumes them)")
    return "Reconciled: " + ", ".join(parts) + "."


def reconcile_json(result: ReconcileResult) -> dict[str, Any]:
    from reconciler.core.comprehend import iteration_properties

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


def watch_status_text(status: dict[str, Any] | None, *, running: bool) -> str:
    """``flywheel status``: the daemon's status file as a few readable lines."""
    if status is None:
        return "The watch daemon is not running (no status file)." if not running else \
            "The watch daemon is starting."
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(status.get("StartTime", 0)))
    head = (f"Watch daemon pid {status.get('Pid')}: {status.get('State')} (since {since})"
            if running else f"The watch daemon is not running (last state "
            f"{status.get('State')}, pid {status.get('Pid')}, started {since}).")
    lines = [head]
    for job in status.get("Running", []):
        doing = f"iteration {job['FlywheelIterationId']}" if job.get("FlywheelIterationId") \
            else job.get("Kind", "").lower()
        lines.append(f"  running  {job['FlywheelName']}: {doing}"
                     + (f", stage {job['Stage']}" if job.get("Stage") else "")
                     + (" (stop requested)" if job.get("StopRequested") else ""))
    for name, why in (status.get("Waiting") or {}).items():
        lines.append(f"  waiting  {name}: {why}")
    for error in status.get("Errors", []):
        lines.append(f"  error    {error['Where']}: {error['Message']}")
    last = status.get("LastPass") or {}
    if last:
        lines.append(f"  last pass {_ago(last.get('Time'))}: {last.get('Flywheels')} flywheel(s),"
                     f" {last.get('Errors')} error(s); trigger: {last.get('Trigger')}")
    counters = status.get("Counters") or {}
    if counters:
        lines.append("  counters  " + ", ".join(f"{k} {v}" for k, v in counters.items()))
    return "\n".join(lines)


def _ago(when: float | None) -> str:
    if when is None:
        return "never"
    return f"{max(time.time() - when, 0):.0f}s ago"


# plan ---------------------------------------------------------------------------------------


def plan_state(view: FlywheelView) -> str:
    """ERROR, SUSPENDED, PENDING or UP_TO_DATE: what `flywheel plan` says of one flywheel."""
    if view.error is not None:
        return "ERROR"
    assert view.plan is not None
    if view.plan.suspended:
        return "SUSPENDED"
    return "PENDING" if view.plan.actions else "UP_TO_DATE"


def plan_table(views: list[FlywheelView]) -> Table:
    table = Table(title="Plan (nothing is changed)", title_justify="left")
    for column in ("NAME", "STATE"):
        table.add_column(column, no_wrap=True)
    table.add_column("WOULD DO, AND WHY", overflow="fold", min_width=30)
    colours = {"ERROR": "red", "PENDING": "yellow", "SUSPENDED": "magenta", "UP_TO_DATE": "green"}
    for v in views:
        state = plan_state(v)
        if v.error is not None:
            detail = escape(str(v.error))
        else:
            assert v.plan is not None
            lines = [escape(action_text(a)) for a in v.plan.actions]
            lines += [f"[dim]{escape(note)}[/]" for note in v.plan.notes]
            detail = "\n".join(lines) or "nothing to do"
        table.add_row(v.name, f"[{colours[state]}]{state}[/]", detail)
    return table


def plan_json(views: list[FlywheelView]) -> dict[str, Any]:
    flywheels = []
    for v in views:
        entry: dict[str, Any] = {"FlywheelName": v.name, "State": plan_state(v)}
        if v.error is not None:
            entry["Error"] = str(v.error)
        if v.plan is not None:
            entry["Actions"] = [_action_json(a) for a in v.plan.actions]
            entry["Notes"] = list(v.plan.notes)
        flywheels.append(entry)
    states = [f["State"] for f in flywheels]
    return {"Flywheels": flywheels, "Pending": states.count("PENDING"),
            "Errors": states.count("ERROR"), "Suspended": states.count("SUSPENDED")}


def _action_json(action: object) -> dict[str, Any]:
    if isinstance(action, Iterate):
        return {"Action": "ITERATE", "Reason": action.reason,
                "NewDatasets": list(action.new_datasets), "Attempt": action.attempt,
                **({"Request": action.request} if action.request else {})}
    if isinstance(action, Pin):
        return {"Action": "PIN", "Version": action.version, "Reason": action.reason}
    if isinstance(action, Unpin):
        return {"Action": "UNPIN", "Reason": action.reason,
                **({"Version": action.version} if action.version else {})}
    if isinstance(action, ApplyDecision):
        return {"Action": "PROMOTE", "Version": action.version, "Reason": action.reason,
                "FlywheelIterationId": action.iteration_id}
    if isinstance(action, WriteSpec):
        return {"Action": "WRITE_BACK", "Version": action.version, "Reason": action.reason}
    if isinstance(action, Acknowledge):
        return {"Action": "ACKNOWLEDGE", "Request": action.request, "Reason": action.reason}
    return {"Action": type(action).__name__.upper()}


# inspection -------------------------------------------------------------------------------


def flywheel_table(views: list[FlywheelView]) -> Table:
    """One row per flywheel. Each version named carries its own F1: the active model's is the
    newest measurement of that version, not the latest iteration's figure for another one."""
    table = Table(title="Flywheels", title_justify="left")
    for column in ("NAME", "MODE", "ACTIVE", "ACTIVE F1", "LATEST ITERATION", "STATUS",
                   "TRAINED", "TRAINED F1", "READY"):
        table.add_column(column, no_wrap=True)
    table.add_column("MESSAGE", overflow="fold", min_width=20)
    for v in views:
        latest = v.observed.latest
        ready = v.conditions[0]
        spec = v.spec_file.spec if v.spec_file else None
        active = v.observed.active_model
        measured = v.observed.measured(active)
        table.add_row(
            v.name,
            spec.task.mode.value if spec else "—",
            (active or "—") + (" (pinned)" if v.observed.status and v.observed.status.pinned
                               else ""),
            f1(measured[0]) if measured else "—",
            latest.flywheel_iteration_id if latest else "—",
            latest.status.value if latest else "—",
            (latest.trained_model_version or "—") if latest else "—",
            f1(latest.trained_f1) if latest else "—",
            "[green]True[/]" if ready.status else "[red]False[/]",
            ready.message,
        )
    return table


def calibration_text(record: IterationRecord, trained: dict | None,
                     active: dict | None) -> str | None:
    """``trained v3 Brier 0.1686, ECE 0.0330; active v2 Brier 0.2045, ECE 0.0356`` (lower is
    better), or None when neither evaluation has probabilities to judge."""
    parts = []
    for which, version, evaluation in (("trained", record.trained_model_version, trained),
                                       ("active", record.evaluated_model_version, active)):
        brier = (evaluation or {}).get("brierScore")
        ece = (evaluation or {}).get("expectedCalibrationError")
        if brier is not None and ece is not None:
            parts.append(f"{which} {version or '—'} Brier {brier:.4f}, ECE {ece:.4f}")
    return "; ".join(parts) + " (lower is better)" if parts else None


def version_f1(observed: Observed, version: str | None) -> str:
    """``v2 (F1 0.8123 in 20240101T000000Z)``: a version named with its own figure."""
    if version is None:
        return "—"
    measured = observed.measured(version)
    return f"{version} (F1 {f1(measured[0])} in {measured[1]})" if measured else version


def iterations_table(name: str, records: list[IterationRecord]) -> Table:
    table = Table(title=f"Iterations of {name}", title_justify="left")
    for column in ("ITERATION", "STATUS", "TRAINED", "F1", "ACTIVE", "F1 ", "Δ F1", "PROMOTED"):
        table.add_column(column, no_wrap=True)
    for column in ("NEW DATASETS", "MESSAGE"):
        table.add_column(column, overflow="fold", min_width=16)
    for r in sorted(records, key=lambda r: r.flywheel_iteration_id, reverse=True):
        trained, active = r.trained_f1, r.active_f1
        delta = f"{trained - active:+.4f}" if trained is not None and active is not None else "—"
        table.add_row(
            r.flywheel_iteration_id, r.status.value, r.trained_model_version or "—", f1(trained),
            r.evaluated_model_version or "—", f1(active), delta,
            ("yes" if r.decision.promote else "no") if r.decision else "—",
            ", ".join(r.new_datasets) or "—",
            r.decision.reason if r.decision and r.status.value == "COMPLETED" else r.message,
        )
    return table


def per_label_table(trained: dict | None, active: dict | None) -> Table:
    table = Table(title="Per-label F1 (same test data)", title_justify="left")
    for column in ("LABEL", "SUPPORT", "TRAINED F1", "ACTIVE F1", "Δ"):
        table.add_column(column, justify="right" if column != "LABEL" else "left")
    active_by = {row["label"]: row for row in (active or {}).get("perLabel", [])}
    for row in (trained or {}).get("perLabel", []):
        other = active_by.get(row["label"])
        delta = f"{row['f1Score'] - other['f1Score']:+.4f}" if other else "—"
        table.add_row(row["label"], str(row["support"]), f1(row["f1Score"]),
                      f1(other["f1Score"]) if other else "—", delta)
    return table


def classification_table(version: str, results: list[Classification], top: int) -> Table:
    table = Table(title=f"Classified with {version}", title_justify="left")
    for column in ("TEXT", "LABELS", "TOP SCORES"):
        table.add_column(column, overflow="fold")
    for c in results:
        shown = list(c.scores.items())[:top]
        scores = ", ".join(f"{label} {value:.3f}" for label, value in shown)
        kind = c.score_kind
        if c.raw_scores is not None:  # --raw-scores: each label's raw score after its probability
            scores = ", ".join(f"{label} {value:.3f} (raw {c.raw_scores[label]:+.3f})"
                               for label, value in shown)
            kind += f"; raw: {c.raw_score_kind}"
        text = c.text if len(c.text) <= 80 else c.text[:77] + "…"
        table.add_row(text, ", ".join(c.labels) or "(none)", f"{scores} ({kind})")
    return table
