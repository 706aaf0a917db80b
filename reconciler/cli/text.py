"""How results read as text: summary lines, ``describe`` and ``iteration`` layouts, hints.

The tables are in :mod:`reconciler.cli.render`; both only format what :mod:`reconciler.api`
returns. Text that comes from users or records (names, reasons, messages) is escaped wherever
a line carries rich markup, so it shows as written.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from reconciler.cli.render import f1
from reconciler.core.drift import psi_reading
from reconciler.core.responses import reconcile_counts
from reconciler.core.state import IterationRecord, Observed, version_number

if TYPE_CHECKING:
    from reconciler.api import IterationDetail, PublishState
    from reconciler.runtime.queries import FlywheelView
    from reconciler.runtime.reconcile import ReconcileResult


def reconcile_summary(result: ReconcileResult) -> str:
    counts = reconcile_counts(result)
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


def publish_hint(state: PublishState | None) -> str | None:
    """One line after a reconcile that left lake/ or pipelines/ uncommitted: what to run."""
    if state is None or not state.uncommitted:
        return None
    if not state.has_remote:
        return ("hint: lake/ and pipelines/ have uncommitted changes; set a DVC remote for the "
                "models (`flywheel init --remote PATH_OR_URL`), then run `flywheel publish`")
    return ("hint: lake/ and pipelines/ have uncommitted changes: `flywheel publish` pushes the "
            "models to the DVC remote and commits them")


def version_f1(observed: Observed, version: str | None) -> str:
    """``v2 (F1 0.8123 in 20240101T000000Z)``: a version named with its own figure."""
    if version is None:
        return "—"
    measured = observed.measured(version)
    return f"{version} (F1 {f1(measured[0])} in {measured[1]})" if measured else version


def describe_lines(v: FlywheelView) -> list[str]:
    """``flywheel describe NAME``: the spec, the versions with their F1, the conditions and the
    last promotions (rich markup)."""
    assert v.spec_file is not None
    spec, observed = v.spec_file.spec, v.observed
    pinned = " (pinned)" if observed.status and observed.status.pinned else ""
    versions = sorted(observed.versions, key=version_number)
    policy = spec.promotion
    lines = [
        f"[bold]{spec.name}[/]  ({escape(v.spec_file.path)})",
        f"  mode            {spec.task.mode.value}, {len(spec.task.labels)} labels: "
        f"{escape(', '.join(spec.task.labels))}",
        f"  active model    {version_f1(observed, observed.active_model)}{pinned}",
        "  versions        " + (", ".join(version_f1(observed, version) for version in versions)
                                or "—"),
        "  datasets        " + escape(", ".join(f"{d.name} ({d.type.value})"
                                                for d in spec.datasets)),
        f"  recipe          {spec.recipe.algorithm}",
        "  promotion       " + (f"minF1 {policy.min_f1}, minImprovement "
                                f"{policy.min_improvement}" if policy else "manual"),
    ]
    for condition in v.conditions:
        colour = "green" if condition.status and condition.type == "Ready" else "yellow"
        lines.append(f"  [{colour}]{condition.type}={condition.status}[/] {condition.reason}: "
                     f"{escape(condition.message)}")
    if observed.status and observed.status.promotions:
        lines.append("  promotions:")
        for p in observed.status.promotions[-10:]:
            lines.append(f"    {p.version} ← {p.previous_version or '—'} {p.kind}: "
                         f"{escape(p.reason)}")
    return lines


def iteration_lines(detail: IterationDetail) -> list[str]:
    """``flywheel iteration NAME ID``: status, both F1s, the decision, calibration (markup)."""
    record = detail.record
    lines = [
        f"[bold]{detail.view.name}[/] iteration {record.flywheel_iteration_id}: "
        f"{record.status.value}",
        f"  {escape(record.message)}",
        f"  trained {record.trained_model_version or '—'} F1 {f1(record.trained_f1)}; active "
        f"{record.evaluated_model_version or '—'} F1 {f1(record.active_f1)} on "
        f"{record.number_of_test_documents} test documents ({record.test_source})",
    ]
    if record.decision:
        lines.append(f"  promotion: {'yes' if record.decision.promote else 'no'} — "
                     f"{escape(record.decision.reason)}")
    calibration = calibration_text(record, detail.trained, detail.active)
    if calibration:
        lines.append(f"  calibration: {calibration}")
    lines.extend(drift_lines(record))
    return lines


def drift_lines(record: IterationRecord) -> list[str]:
    """The "Data drift" block: each new dataset against the active model's training data."""
    drift = record.drift
    if drift is None:
        why = ("no active model to compare with" if record.evaluated_model_version is None
               else "not measured")
        return [f"  data drift: {why}"]
    ref = drift.reference
    capped = ", vocabulary capped" if ref.vocabulary_capped else ""
    lines = [f"  Data drift against {ref.version}'s training data ({ref.documents} documents, "
             f"mean length {_figure(ref.mean_length, '.0f')} chars{capped}):"]
    rows = list(drift.datasets.items())
    if drift.new_train_data is not None and len(rows) != 1:
        rows.append(("all new TRAIN data", drift.new_train_data))
    if not rows:
        lines.append("    no new dataset to measure")
    for name, figures in rows:
        ratio = (f" (ratio {figures.length_ratio:.2f})" if figures.length_ratio is not None else "")
        lines.append(
            f"    {escape(name)}: label PSI {_figure(figures.label_psi, '.3f')} "
            f"({psi_reading(figures.label_psi)}), unseen tokens "
            f"{_figure(figures.oov_share, '.1%')}, mean length "
            f"{_figure(figures.mean_length, '.0f')} vs {_figure(ref.mean_length, '.0f')} chars"
            f"{ratio}; {figures.documents} documents")
    return lines


def _figure(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def calibration_text(record: IterationRecord, trained: dict[str, Any] | None,
                     active: dict[str, Any] | None) -> str | None:
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
