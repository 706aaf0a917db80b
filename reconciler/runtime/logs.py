"""Log lines: one line per event of a reconcile or of the watch daemon.

The one log sink of every long-running face (``flywheel reconcile``'s progress, the watch
daemon, its workers' relayed events): ``plain`` ``ts=… event=… key=value`` lines, ``json`` (one
object per line, the same keys) or ``pretty`` (coloured, for a terminal). ``event_fields`` turns a
reconcile event into the fields of its line.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from reconciler.runtime.events import (
    Degraded,
    Event,
    Failed,
    IterationFinished,
    IterationStarted,
    Planned,
    Promoted,
    Recovered,
    StageStarted,
    WroteBack,
)


def _finite(data: Any) -> Any:
    """``data`` with every NaN or infinity replaced by None (for log lines, which never fail)."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(value) for value in data]
    return data


def log_format(requested: str, console: Console) -> str:
    """``auto`` means pretty on a terminal and key=value lines anywhere else."""
    if requested != "auto":
        return requested
    return "pretty" if console.is_terminal else "plain"


class LineWriter:
    """One line per event, safe to call from several threads.

    ``plain``: ``ts=… event=… key=value`` (values with spaces are JSON-quoted); ``json``: one JSON
    object per line with the same keys; ``pretty``: coloured text for a terminal.
    """

    def __init__(self, console: Console, fmt: str, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.console = console
        self.fmt = fmt
        self.clock = clock
        self._lock = threading.Lock()

    def write(self, fields: dict[str, Any]) -> None:
        if "ts" not in fields:
            fields = {"ts": timestamp(self.clock()), **fields}
        if self.fmt == "pretty":
            with self._lock:
                self.console.print(_pretty_line(fields), highlight=False, soft_wrap=True)
            return
        if self.fmt == "json":
            try:
                line = json.dumps(fields, ensure_ascii=False, allow_nan=False)
            except ValueError:  # strict JSON lines: a non-finite number becomes null
                line = json.dumps(_finite(fields), ensure_ascii=False, allow_nan=False)
        else:
            line = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        with self._lock:  # machine-read lines go out verbatim: no markup, emoji or wrapping
            self.console.file.write(line + "\n")
            self.console.file.flush()


def timestamp(now: float | None = None) -> str:
    """UTC ISO-8601 with milliseconds, the ``ts`` of every log line."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


_STYLES = {"error": "red", "promoted": "green", "iteration.finished": "cyan",
           "recovered": "green", "stopping": "yellow", "stopped": "yellow"}


def _pretty_line(fields: dict[str, Any]) -> str:
    name = fields.get("flywheel", "")
    event = fields.get("event", "")
    detail = " ".join(f"{k}={_text(v)}" for k, v in fields.items()
                      if k not in ("ts", "event", "flywheel"))
    clock = str(fields.get("ts", ""))[11:19]
    head = f"[dim]{clock}[/] " + (f"[bold]{escape(str(name))}[/] " if name else "")
    return f"{head}[{_STYLES.get(event, 'default')}]{event}[/] {escape(detail)}"


def event_fields(event: Event) -> dict[str, Any] | None:
    """The fields of one reconcile event's log line (numbers stay numbers for JSON)."""
    if isinstance(event, Planned):
        if event.plan.up_to_date:
            return {"event": "up-to-date", "flywheel": event.flywheel,
                    "note": "; ".join(event.plan.notes) or "nothing to do"}
        return {"event": "planned", "flywheel": event.flywheel,
                "actions": "; ".join(a.summary() for a in event.plan.actions) or "none",
                **({"note": "; ".join(event.plan.notes)} if event.plan.notes else {})}
    if isinstance(event, IterationStarted):
        return {"event": "iteration.started", "flywheel": event.flywheel,
                "iteration": event.iteration_id, "reason": event.reason,
                "train_docs": event.documents.train, "test_docs": event.documents.test}
    if isinstance(event, StageStarted):
        return {"event": "stage.started", "flywheel": event.flywheel,
                "iteration": event.iteration_id, "stage": event.stage}
    if isinstance(event, IterationFinished):
        r = event.record
        fields: dict[str, Any] = {"event": "iteration.finished", "flywheel": event.flywheel,
                                  "iteration": r.flywheel_iteration_id, "status": r.status.value}
        if r.trained_model_version:
            fields |= {"trained": r.trained_model_version,
                       "trained_f1": _rounded(r.trained_f1),
                       "active": r.evaluated_model_version or "none",
                       "active_f1": _rounded(r.active_f1)}
        if r.decision:
            fields["decision"] = r.decision.reason
        if r.status.value != "COMPLETED":
            fields["message"] = r.message
        if r.duration_seconds is not None:
            fields["seconds"] = round(r.duration_seconds, 1)
        return fields
    if isinstance(event, Promoted):
        p = event.promotion
        return {"event": "promoted", "flywheel": event.flywheel, "version": p.version,
                "previous": p.previous_version or "none", "kind": p.kind, "reason": p.reason}
    if isinstance(event, WroteBack):
        return {"event": "wrote-back", "flywheel": event.flywheel, "version": event.version,
                "previous": event.previous or "none", "file": event.spec_file,
                "commit": (event.commit or "not committed")[:12],
                **({"pushed": event.pushed} if event.pushed else {})}
    if isinstance(event, Degraded):
        d = event.degradation
        return {"event": "degraded", "flywheel": event.flywheel, "version": d.version,
                "f1": _rounded(d.f1_now), "f1_at_promotion": _rounded(d.f1_at_promotion),
                "iteration": d.iteration, "rule": d.rule, "threshold": d.threshold,
                **({"labels": ", ".join(f"{x.label} -{x.drop:.4f}" for x in event.drops[:3])}
                   if event.drops else {})}
    if isinstance(event, Recovered):
        return {"event": "recovered", "flywheel": event.flywheel,
                "version": event.version or "none", "how": event.how,
                **({"iteration": event.iteration} if event.iteration else {})}
    assert isinstance(event, Failed)  # the last kind of event
    return {"event": "error", "flywheel": event.flywheel or "-", "error": str(event.error),
            "kind": event.error.kind}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _text(value: object) -> str:
    return "—" if value is None else str(value)


def _quote(value: object) -> str:
    text = _text(value)
    if not text or any(c in text for c in ' "=\t\n'):
        return json.dumps(text, ensure_ascii=False)
    return text
