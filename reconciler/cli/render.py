"""How results look to people: rich tables (and the reconcile progress spinner); ``print_json``
for ``-o json``. Text layouts are in :mod:`reconciler.cli.text`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reconciler.core.responses import plan_state
from reconciler.errors import FlywheelError
from reconciler.runtime.events import (
    Event,
    StageStarted,
)
from reconciler.runtime.logs import LineWriter, event_fields

if TYPE_CHECKING:
    from reconciler.api.health import Health
    from reconciler.core.state import IterationRecord
    from reconciler.runtime.classify import Classification
    from reconciler.runtime.queries import FlywheelView


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


# plan ---------------------------------------------------------------------------------------


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
            lines = [escape(a.summary()) for a in v.plan.actions]
            lines += [f"[dim]{escape(note)}[/]" for note in v.plan.notes]
            detail = "\n".join(lines) or "nothing to do"
        table.add_row(v.name, f"[{colours[state]}]{state}[/]", detail)
    return table


# inspection -------------------------------------------------------------------------------


def flywheel_table(views: list[FlywheelView]) -> Table:
    """One row per flywheel. Each version named carries its own F1: the active model's is the
    newest measurement of that version, not the latest iteration's figure for another one."""
    from reconciler.core.conditions import ConditionType  # the spec's models: only here

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
            ("[green]True[/]" if ready.status else "[red]False[/]")
            + (" [red]Degraded[/]" if v.holding(ConditionType.DEGRADED) else ""),
            v.message,
        )
    return table


def degradation_lines(found: Health) -> list[str]:
    """``describe``'s Degraded block: the figures, then the labels that broke (rich markup)."""
    d = found.degradation
    if d is None:
        return []
    lines = [f"[red bold]Degraded[/]: {escape(d.message)}"]
    if found.drops:
        lines.append("  labels that fell most (F1 at promotion -> now):")
        lines += [f"    {escape(x.label)}: {x.before:.4f} -> {x.after:.4f} "
                  f"([red]-{x.drop:.4f}[/])" for x in found.drops[:10]]
    return lines


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


def per_label_table(trained: dict[str, Any] | None, active: dict[str, Any] | None) -> Table:
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
        kind: str = c.score_kind
        if c.raw_scores is not None:  # --raw-scores: each label's raw score after its probability
            scores = ", ".join(f"{label} {value:.3f} (raw {c.raw_scores[label]:+.3f})"
                               for label, value in shown)
            kind += f"; raw: {c.raw_score_kind}"
        text = c.text if len(c.text) <= 80 else c.text[:77] + "…"
        table.add_row(text, ", ".join(c.labels) or "(none)", f"{scores} ({kind})")
    return table
