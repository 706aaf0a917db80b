"""Write-back: the policy's active model recorded in the spec's ``activeModel`` line, in git.

Order, each step safe to crash after: (1) the lake's status says a write-back of ``vN`` is
pending (with the value the line held before), (2) the spec line is edited in place (one line,
atomically), (3) the spec file alone is committed (and pushed, when asked), (4) the status says
it is done, with the commit. A reconcile that finds (1) without (4) finishes the job; while it is
pending, the line holding either the old or the new value is the policy's, not a person's pin.
Finishing it: a spec whose only uncommitted change is that very edit is committed (not held as a
person's work in progress), and a commit already made is found and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.adapters import git
from reconciler.adapters.files import atomic_write_text, file_lock, remove_stale_temp_files
from reconciler.adapters.loader import SpecFile, load_spec, parse_yaml
from reconciler.core.layout import DESIRED_STATE_LOCK
from reconciler.core.planner import person_pin
from reconciler.core.specedit import SpecEditError, set_active_model
from reconciler.core.state import FlywheelStatus, Observed, WriteBack
from reconciler.errors import SpecError, StateError
from reconciler.failpoints import failpoint
from reconciler.runtime.events import WroteBack
from reconciler.runtime.store import LakeStore

#: How long a write-back waits for another writer of desired state (an API call's commit).
DESIRED_STATE_WAIT = 60.0

if TYPE_CHECKING:
    from reconciler.runtime.reconcile import Context

DEFAULT_MESSAGE = ("flywheel: {flywheel} activeModel {old} -> {new} "
                   "(F1 {trained_f1} vs {active_f1})")
MESSAGE_FIELDS = ("flywheel", "old", "new", "trained_f1", "active_f1", "iteration", "reason",
                  "spec_file")


@dataclass(frozen=True)
class GitOps:
    """How write-backs reach git: commit (in a git repository), and optionally push."""

    commit: bool = True
    push: bool = False
    remote: str = "origin"
    branch: str | None = None  # push to this bot branch (PR-ready) instead of the current one
    message: str = DEFAULT_MESSAGE
    skip_ci: str = git.SKIP_CI_MARKER  # appended to the subject; "" to let CI run on these commits

    def subject(self, fields: dict[str, str]) -> str:
        return git.with_marker(self.message.format_map(fields), self.skip_ci)


def check_template(template: str) -> None:
    """Refuse a message template naming a field we do not have (before anything runs)."""
    try:
        template.format_map({name: "x" for name in MESSAGE_FIELDS})
    except (KeyError, ValueError, IndexError) as exc:
        raise StateError(f"commit message template {template!r}: {exc!r}; fields are "
                         + ", ".join("{" + f + "}" for f in MESSAGE_FIELDS)) from exc


def write_back(ctx: Context, spec_file: SpecFile, status: FlywheelStatus, version: str) -> None:
    """Make the spec's marked ``activeModel`` line say ``version``, committed; idempotent.

    ``ctx.gitops`` says how it reaches git. Under the repository's desired-state lock, which
    the API's writes hold too: the spec is read, edited and committed by one writer at a time.
    """
    with file_lock(ctx.root / DESIRED_STATE_LOCK, timeout=DESIRED_STATE_WAIT,
                   what="the desired state", stop=ctx.stop.is_set):
        _write_back(ctx, spec_file, status, version)


def _write_back(ctx: Context, spec_file: SpecFile, status: FlywheelStatus, version: str
                ) -> None:
    root, lake, gitops, clock = ctx.root, ctx.lake, ctx.gitops, ctx.clock
    name = spec_file.spec.name
    fresh = load_spec(root / spec_file.path, root)  # the file as it is now, not as planned
    if person_pin(fresh.spec, status, fresh.policy_managed) is not None:
        _cancel(lake, status, "a person's pin in the spec supersedes it")
        return
    revision = git.revision(root, (spec_file.path,)) if gitops.commit else None
    resuming = (status.write_back is not None and status.write_back.pending
                and status.write_back.version == version)
    if revision is not None and revision.dirty(spec_file.path) and not (
            resuming and _only_our_edit(root, spec_file.path, version)):
        _hold(lake, status, version, fresh.spec.active_model, clock(),
              f"{spec_file.path} has uncommitted changes; the write-back waits for them to be "
              "committed or undone")
        return
    _hold(lake, status, version, fresh.spec.active_model, clock(), None)
    failpoint("writeback:pending")
    path = root / spec_file.path
    # A write-back killed mid-edit left its temp file beside the spec; only a write-back (under
    # the flywheel's lock, which we hold) writes one, so any there is an orphan.
    remove_stale_temp_files(path.parent, older_than=0, target=path.name)
    text = path.read_text("utf-8")
    try:
        edited = set_active_model(text, fresh.lines.get(("activeModel",)), version)
    except SpecEditError as exc:
        raise StateError(f"cannot write {version} back: {exc}", file=spec_file.path,
                         line=fresh.lines.get(("activeModel",)), field="activeModel",
                         flywheel=name) from exc
    if edited != text:
        atomic_write_text(path, edited)
    failpoint("writeback:edited")
    commit = pushed = None
    if revision is not None:
        fields = _message_fields(lake.observe(name), spec_file.path, name,
                                 status.write_back.previous if status.write_back else None,
                                 version)
        commit = git.commit_paths(root, [spec_file.path], gitops.subject(fields)
                                  + f"\n\n{fields['reason']}\n")
        if commit is None and resuming:  # a write-back killed after its commit: that commit
            commit = git.run(root, "log", "-1", "--format=%H", "--",
                             spec_file.path).strip() or None
        failpoint("writeback:committed")
        if commit and gitops.push:
            pushed = git.push(root, gitops.remote, gitops.branch)
    failpoint("writeback:before-status")
    written = status.write_back
    assert written is not None
    status.write_back = written.model_copy(update={"pending": False, "commit": commit,
                                                   "time": clock(), "note": None})
    lake.write_status(status)
    ctx.report(WroteBack(name, version, written.previous, spec_file.path, commit, pushed))


def _only_our_edit(root: Path, spec_path: str, version: str) -> bool:
    """Whether the spec's one uncommitted change is the policy's line set to ``version``.

    That is what a write-back killed between its edit and its commit leaves: the edit is ours,
    to be committed, not a person's change to wait for.
    """
    try:
        head = git.run(root, "show", f"HEAD:{spec_path}")
        _, lines = parse_yaml(head, spec_path)
        ours = set_active_model(head, lines.get(("activeModel",)), version)
        return ours == (root / spec_path).read_text("utf-8")
    except (git.GitError, SpecError, SpecEditError, OSError, UnicodeDecodeError):
        return False


def _hold(lake: LakeStore, status: FlywheelStatus, version: str, previous: str | None,
          now: float, note: str | None) -> None:
    """Record the write-back as pending (the intent), before touching the file."""
    current = status.write_back
    if current is not None and current.pending and current.version == version:
        previous = current.previous
    status.write_back = WriteBack(version=version, previous=previous, pending=True,
                                  time=now, note=note)
    lake.write_status(status)


def _cancel(lake: LakeStore, status: FlywheelStatus, why: str) -> None:
    if status.write_back is not None and status.write_back.pending:
        status.write_back = status.write_back.model_copy(update={"pending": False, "note": why})
        lake.write_status(status)


def _message_fields(observed: Observed, spec_path: str, name: str, old: str | None,
                    new: str) -> dict[str, str]:
    iteration = next((it for it in reversed(observed.iterations)
                      if it.trained_model_version == new), None)
    trained = iteration.trained_f1 if iteration else None
    active = iteration.active_f1 if iteration else None
    promotion = next((p for p in reversed(observed.status.promotions if observed.status else [])
                      if p.version == new), None)
    return {
        "flywheel": name, "old": old or "none", "new": new,
        "trained_f1": f"{trained:.4f}" if trained is not None else "n/a",
        "active_f1": f"{active:.4f}" if active is not None else "n/a",
        "iteration": iteration.flywheel_iteration_id if iteration else "n/a",
        "reason": promotion.reason if promotion else f"{new} is the active model",
        "spec_file": spec_path,
    }
