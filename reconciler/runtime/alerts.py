"""The degradation alarm at work: after an iteration, is the flywheel degraded now, or no
longer, and who is told (the reconcile's events; the spec's webhook, in the background).

A transition is what is reported: degraded by an iteration that was not degraded before (or
by a newer iteration than before), and recovered after having been degraded. So a flywheel
that stays degraded through no-op reconciles is announced once, by the iteration that showed it.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from reconciler.adapters.webhook import Delivery, post_json
from reconciler.core.degradation import Degradation, LabelDrop, degradation, label_drops
from reconciler.core.spec import FlywheelSpec, Webhook
from reconciler.core.state import Observed
from reconciler.runtime.events import Degraded, Recovered
from reconciler.runtime.store import LakeStore


def drops(lake: LakeStore, name: str, observed: Observed,
          found: Degradation) -> tuple[LabelDrop, ...]:
    """The labels whose F1 fell between the F1 at promotion and now (the label that broke):
    the two evaluations of the same version, read from the lake."""
    if found.promotion_iteration is None:
        return ()
    was_trained = any(r.flywheel_iteration_id == found.promotion_iteration
                      and r.trained_model_version == found.version for r in observed.iterations)
    try:
        before = lake.evaluation(name, found.promotion_iteration,
                                 "trained" if was_trained else "active")
        after = lake.evaluation(name, found.iteration, "active")
    except Exception:  # an unreadable evaluation costs the detail, never the alarm
        return ()
    return tuple(label_drops(before, after))


def transition(lake: LakeStore, spec: FlywheelSpec, before: Observed,
               after: Observed) -> Degraded | Recovered | None:
    """What changed for the alarm between the records before and after an action."""
    was = degradation(before, spec.promotion)
    now = degradation(after, spec.promotion)
    if now is not None and (was is None or (was.version, was.iteration) !=
                            (now.version, now.iteration)):
        return Degraded(spec.name, now, drops(lake, spec.name, after, now))
    if was is not None and now is None:
        active = after.active_model
        how = (f"{active} is active now" if active != was.version
               else f"{active}'s F1 is back within the alarm's bounds")
        latest = after.completed()[-1].flywheel_iteration_id if after.completed() else None
        return Recovered(spec.name, active, latest, how)
    return None


def payload(event: Degraded | Recovered, clock: Callable[[], float]) -> dict[str, Any]:
    """The webhook's JSON body."""
    stamp = datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(event, Degraded):
        return {"event": "flywheel.degraded", "flywheel": event.flywheel, "time": stamp,
                "condition": {"type": "Degraded", "status": True,
                              "reason": event.degradation.reason,
                              "message": event.degradation.message},
                "degradation": event.degradation.to_json(),
                "labels": [{"label": d.label, "f1AtPromotion": d.before, "f1Now": d.after,
                            "drop": d.drop} for d in event.drops]}
    return {"event": "flywheel.recovered", "flywheel": event.flywheel, "time": stamp,
            "activeModel": event.version, "iteration": event.iteration, "message": event.how}


class Announcer:
    """Posts webhooks on threads of their own, so a reconcile never waits for a receiver; a
    process that ends gives them up to their own time bound to finish (``atexit``)."""

    def __init__(self, log: Callable[[Delivery], None] | None = None) -> None:
        self.log = log
        self._threads: list[tuple[threading.Thread, float]] = []
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        atexit.register(self.wait)

    def announce(self, hook: Webhook, body: dict[str, Any]) -> None:
        bound = hook.timeout_seconds * (hook.retries + 1) + 2.0 ** hook.retries
        thread = threading.Thread(target=self._deliver, args=(hook, body), daemon=True,
                                  name=f"webhook {body.get('flywheel')}")
        with self._lock:
            self._threads.append((thread, time.monotonic() + bound))
        thread.start()

    def _deliver(self, hook: Webhook, body: dict[str, Any]) -> None:
        delivery = post_json(hook.url, body, timeout=hook.timeout_seconds, retries=hook.retries)
        with self._lock:
            self.deliveries.append(delivery)
        if self.log is not None:
            self.log(delivery)

    def wait(self) -> None:
        """Until every delivery has ended or run out of its time bound."""
        with self._lock:
            pending = list(self._threads)
            self._threads.clear()
        for thread, deadline in pending:
            thread.join(max(0.0, deadline - time.monotonic()))


#: The process's announcer (one per process: deliveries outlive the reconcile that started
#: them, not the process).
ANNOUNCER = Announcer()
