"""The planner: desired state (a spec) + observed state (the lake) -> actions, each with a reason.

Pure: no files, no clock (``now`` is passed in), no DVC. The runtime executes what it returns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from reconciler.core.actions import (
    Acknowledge,
    Action,
    ApplyDecision,
    Blocked,
    Iterate,
    Pin,
    Plan,
    Unpin,
    WriteSpec,
)
from reconciler.core.backoff import backoff
from reconciler.core.policy import policy_choice
from reconciler.core.spec import FlywheelSpec, Trigger
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    Observed,
    version_number,
)

#: Bumped when the meaning of an iteration changes (stage code, features), so that every
#: flywheel iterates once more with the new code.
#: 2: calibrated probabilities (the model file holds a CalibratedClassifier; evaluations carry
#: the Brier score and expected calibration error); byte-reproducible model files.
PIPELINE_VERSION = "2"
MAX_ATTEMPTS = 4
BACKOFF_SECONDS = 60.0


def input_digest(spec: FlywheelSpec, md5s: Mapping[str, str]) -> str:
    """Content digest of everything that determines a trained model.

    Dataset names and paths are left out on purpose: renaming a file does not change the model.
    """
    payload = {
        "pipeline": PIPELINE_VERSION,
        "task": spec.task.model_dump(mode="json", by_alias=True),
        "recipe": spec.recipe.model_dump(mode="json", by_alias=True),
        "datasets": sorted((d.type.value, md5s[d.name]) for d in spec.datasets),
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def person_pin(spec: FlywheelSpec, status: FlywheelStatus | None,
               policy_managed: bool) -> str | None:
    """The version a person pinned in the spec, if any: the pin that always wins.

    An ``activeModel`` line without the policy marker is a pin. A marked line is the policy's
    own while it holds what the policy last wrote there (or, while that write is pending, what
    was there before); any other value was put there by a person (an edit, a ``git revert``),
    and that is a pin too: a rollback sticks instead of being overwritten by the next promotion.
    """
    value = spec.active_model
    if value is None or not policy_managed:
        return value
    written = status.write_back if status else None
    if written is None:
        return value  # marked by hand, never written by the policy: a person's choice
    if value == written.version or (written.pending and value == written.previous):
        return None
    return value


def plan(spec: FlywheelSpec, observed: Observed, md5s: Mapping[str, str], now: float, *,
         policy_managed: bool = False, request: str | None = None) -> Plan:
    """Decide what to do for one flywheel. ``md5s`` maps dataset name -> content MD5.

    ``policy_managed``: the spec's ``activeModel`` line carries the policy marker.
    ``request``: the latest `flywheel iterate` request token for this flywheel, if any.
    """
    if spec.suspend:
        return Plan(spec.name, notes=("suspended (suspend: true in the spec): nothing is "
                                      "iterated or promoted until it is removed",),
                    suspended=True)
    pin = person_pin(spec, observed.status, policy_managed)
    blocked = _changed_dataset(spec, observed, md5s) or _missing_pin(pin, observed)
    if blocked:
        return Plan(spec.name, blocked=blocked)
    actions: list[Action] = []
    notes: list[str] = []
    actions.extend(_pin_actions(pin, spec, observed, policy_managed))
    pending = _pending_decision(pin, observed) or _first_choice(pin, spec, observed)
    if pending and not any(isinstance(a, Unpin) for a in actions):  # an unpin decides it all
        actions.append(pending)
    write = _write_back(pin, spec, observed)
    if write:
        actions.append(write)
    open_request = request if request and request != _handled(observed) else None
    if not spec.train_datasets:
        if open_request:
            actions.append(Acknowledge(open_request, NO_TRAIN_DATA))
        return Plan(spec.name, actions=tuple(actions), notes=(*notes, NO_TRAIN_DATA))
    digest = input_digest(spec, md5s)
    iterate, note, retry_at = _iteration(spec, observed, md5s, digest, now)
    if iterate is not None and iterate.attempt == 1 and spec.trigger is Trigger.REQUEST \
            and not open_request and not any(it.input_digest == digest
                                             for it in observed.iterations):
        note = (f"{iterate.reason}: waits for a request (trigger: request; "
                "StartFlywheelIteration or `flywheel iterate`)")
        iterate = None
    if open_request:
        iterate, acknowledge = _answer(open_request, iterate, observed, md5s, digest, spec)
        if acknowledge:
            actions.append(acknowledge)
        else:
            retry_at = None
    if iterate:
        actions.append(iterate)
    if note and not iterate:
        notes.append(note)
    return Plan(spec.name, actions=tuple(actions), notes=tuple(notes), retry_at=retry_at)


#: A flywheel made by CreateFlywheel has no data until CreateDataset declares some.
NO_TRAIN_DATA = ("waiting for data: no TRAIN dataset is declared yet (add one under datasets:, "
                 "or CreateDataset through the API)")


def _handled(observed: Observed) -> str | None:
    return observed.status.last_handled_iteration_request if observed.status else None


def _answer(request: str, iterate: Iterate | None, observed: Observed, md5s: Mapping[str, str],
            digest: str, spec: FlywheelSpec) -> tuple[Iterate | None, Acknowledge | None]:
    """A `flywheel iterate` request: iterate now, even inside a back-off or after giving up."""
    if iterate is not None:
        return Iterate(iterate.digest, iterate.new_datasets, iterate.attempt, iterate.reason,
                       request), None
    attempts = [it for it in observed.iterations if it.input_digest == digest]
    last = attempts[-1] if attempts else None
    if last is None or last.status is IterationStatus.COMPLETED:
        return None, Acknowledge(request, "up to date: no new data, recipe or task to iterate on"
                                 + (f" since iteration {last.flywheel_iteration_id}"
                                    if last else ""))
    if not last.status.terminal:
        return None, Acknowledge(request, f"iteration {last.flywheel_iteration_id} is "
                                 f"{last.status.value} already")
    new = _new_datasets(spec, observed, md5s)
    return Iterate(digest, new, last.attempt + 1, f"requested (flywheel iterate) after: "
                   f"{last.message}", request), None


def _changed_dataset(spec: FlywheelSpec, observed: Observed,
                     md5s: Mapping[str, str]) -> Blocked | None:
    consumed = observed.consumed_datasets()
    for index, dataset in enumerate(spec.datasets):
        if dataset.name in consumed and consumed[dataset.name][0] != md5s[dataset.name]:
            old, iteration = consumed[dataset.name]
            return Blocked(
                f"dataset {dataset.name!r} changed after iteration {iteration} consumed it "
                f"(md5 {old} -> {md5s[dataset.name]}); datasets are immutable versions: "
                "restore the file or declare a new dataset",
                ("datasets", index, "path"),
            )
    return None


def _missing_pin(pin: str | None, observed: Observed) -> Blocked | None:
    if pin is None or pin in observed.versions:
        return None
    known = ", ".join(sorted(observed.versions, key=version_number)) or "none yet"
    return Blocked(f"version {pin} does not exist (versions: {known}); the active model stays "
                   f"{observed.active_model or 'unset'}", ("activeModel",))


def _pin_actions(pin: str | None, spec: FlywheelSpec, observed: Observed,
                 policy_managed: bool) -> list[Action]:
    status = observed.status
    if pin is not None:
        if status is None or status.active_model != pin or not status.pinned:
            how = ("the policy's activeModel line was edited to " if policy_managed
                   else "activeModel is pinned to ")
            return [Pin(pin, f"{how}{pin} in the spec")]
        return []
    if status is not None and status.pinned:
        return [_unpin(spec, observed, status.active_model)]
    return []


def _unpin(spec: FlywheelSpec, observed: Observed, active: str | None) -> Unpin:
    """Hand the choice back to the policy: the active model becomes the policy's own choice."""
    removed = "pin removed from the spec"
    if spec.promotion is None:
        return Unpin(f"{removed}; {active} stays active (no promotion policy: promotion is "
                     "manual)")
    choice = policy_choice(spec.promotion, observed.completed())
    if choice.version is None or choice.version not in observed.versions:
        return Unpin(f"{removed}; {active} stays active ({choice.reason})")
    if choice.version == active:
        return Unpin(f"{removed}; the policy keeps {active} ({choice.reason})")
    return Unpin(f"{removed}; the policy makes {choice.version} active ({choice.reason})",
                 choice.version, choice.iteration_id)


def _write_back(pin: str | None, spec: FlywheelSpec, observed: Observed) -> WriteSpec | None:
    """Finish a pending write-back, or write the active model when write-back is turned on."""
    status = observed.status
    if pin is not None or status is None or status.active_model is None:
        return None
    written = status.write_back
    if written is not None and written.pending:
        return WriteSpec(written.version, f"finish writing {written.version} into activeModel")
    enabled = spec.promotion is not None and spec.promotion.write_back
    if enabled and spec.active_model != status.active_model and (
            written is None or written.version != status.active_model):
        return WriteSpec(status.active_model, f"write-back is on: record the active model "
                         f"{status.active_model} in the spec")
    return None


def _pending_decision(pin: str | None, observed: Observed) -> ApplyDecision | None:
    if pin is not None:
        return None
    completed = observed.completed()
    if not completed:
        return None
    last = completed[-1]
    decision = last.decision
    if not (decision and decision.promote and last.trained_model_version):
        return None
    status = observed.status
    applied = status is not None and any(p.flywheel_iteration_id == last.flywheel_iteration_id
                                         for p in status.promotions)
    if applied or (status is not None and status.active_model == last.trained_model_version):
        return None
    return ApplyDecision(last.flywheel_iteration_id, last.trained_model_version, decision.reason)


def _first_choice(pin: str | None, spec: FlywheelSpec,
                  observed: Observed) -> ApplyDecision | None:
    """Nothing is active yet, but the policy (changed since, e.g. a lower minF1) now accepts a
    version: make it active. An active model is never replaced this way, only by an iteration."""
    status = observed.status
    if pin is not None or spec.promotion is None or (status and status.active_model):
        return None
    choice = policy_choice(spec.promotion, observed.completed())
    if choice.version is None or choice.iteration_id is None or \
            choice.version not in observed.versions:
        return None
    return ApplyDecision(choice.iteration_id, choice.version, f"policy now met: {choice.reason}")


Decision = tuple[Iterate | None, str | None, float | None]  # (action, note, retry at)


def _iteration(spec: FlywheelSpec, observed: Observed, md5s: Mapping[str, str], digest: str,
               now: float) -> Decision:
    attempts = [it for it in observed.iterations if it.input_digest == digest]
    new = _new_datasets(spec, observed, md5s)
    if not attempts:
        if not observed.iterations:
            reason = "first iteration"
        elif new:
            reason = "new datasets: " + ", ".join(new)
        else:
            reason = "recipe or task changed"
        return Iterate(digest, new, 1, reason), None, None
    last = attempts[-1]
    if last.status is IterationStatus.COMPLETED:
        return None, f"up to date (iteration {last.flywheel_iteration_id})", None
    if not last.status.terminal:
        return None, f"iteration {last.flywheel_iteration_id} is {last.status.value}", None
    if last.status is IterationStatus.STOPPED and last.retryable:
        # Stopped on request (a shutdown), not a failure: resume now, same attempt number.
        return Iterate(digest, new, last.attempt, f"resume iteration "
                       f"{last.flywheel_iteration_id}, which was stopped"), None, None
    if last.status is IterationStatus.FAILED and last.retryable and last.interrupted \
            and last.attempt < MAX_ATTEMPTS:
        # The reconciler running it died (its lock is free again, or this plan would not run
        # under it): not the iteration's failure, so no back-off. The attempt still counts, so
        # an iteration that takes its reconciler down every time gives up after MAX_ATTEMPTS.
        return Iterate(digest, new, last.attempt + 1, f"resume iteration "
                       f"{last.flywheel_iteration_id} at once: {last.message}"), None, None
    return _retry(last, new, digest, now)


def _retry(last: IterationRecord, new: tuple[str, ...], digest: str, now: float) -> Decision:
    failed = f"iteration {last.flywheel_iteration_id} {last.status.value}: {last.message}"
    if not last.retryable:
        return None, failed + " (not retried: change the spec or data to try again)", None
    if last.attempt >= MAX_ATTEMPTS:
        return None, failed + f" (gave up after {last.attempt} attempts)", None
    wait = backoff(last.attempt, BACKOFF_SECONDS)
    due = (last.end_time or last.creation_time) + wait
    if now < due:
        return None, failed + f" (retry in {due - now:.0f}s)", due
    return Iterate(digest, new, last.attempt + 1, f"retry {last.attempt + 1} after: "
                   f"{last.message}"), None, None


def _new_datasets(spec: FlywheelSpec, observed: Observed,
                  md5s: Mapping[str, str]) -> tuple[str, ...]:
    seen = {(ref.name, ref.md5) for it in observed.completed() for ref in it.datasets}
    return tuple(d.name for d in spec.datasets if (d.name, md5s[d.name]) not in seen)
