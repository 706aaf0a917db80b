"""The engine's orchestration in milliseconds: ``reconcile()`` over fakes of its own ports.

:class:`reconciler.testing.InMemoryLake` holds the records and :class:`RecordingExecutor`
stands in for the pipeline (canned outputs), so no DVC, git or scikit-learn runs: the specs and
dataset files are real files in a temporary folder, everything else is the real engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.core.actions import Acknowledge, ApplyDecision, Iterate, Pin, Unpin, WriteSpec
from reconciler.core.planner import BACKOFF_SECONDS
from reconciler.core.state import IterationStatus, Observed, PromotionKind
from reconciler.errors import PipelineError, TransientError
from reconciler.runtime.events import Planned, WroteBack
from reconciler.runtime.reconcile import ReconcileResult, reconcile
from reconciler.runtime.writeback import GitOps
from reconciler.testing import InMemoryLake, RecordingExecutor

NAME = "packages"
SPEC = "specs/packages.yaml"
LABELS = ["games", "mail"]
START = 1_800_000_000.0


def spec_text(*train: str, active: str | None = None, write_back: bool = False) -> str:
    rows = "".join(f"  - {{name: {t}, type: TRAIN, path: data/{t}.csv}}\n" for t in train)
    text = (f"apiVersion: flywheel-reconciler/v1\nname: {NAME}\ntask:\n  mode: MULTI_CLASS\n"
            f"  labels: [{', '.join(LABELS)}]\ndatasets:\n{rows}"
            "  - {name: test, type: TEST, path: data/test.csv}\n"
            "promotion:\n  minF1: 0.5\n  minImprovement: 0.01\n")
    if write_back:
        text += "  writeBack: true\n"
    if active is not None:
        text += f"activeModel: {active}\n"
    return text


class Repo:
    """A repository folder with real specs and datasets, reconciled over the two fakes."""

    def __init__(self, tmp_path: Path, *, write_back: bool = False) -> None:
        self.root = (tmp_path / "repo").resolve()
        self.write_back = write_back
        self.lake = InMemoryLake(self.root)
        self.executor = RecordingExecutor(tmp_path / "outputs", lake=self.lake)
        self.now = START
        self.events: list[object] = []
        self.data("test")
        self.declare("v1")

    def data(self, name: str) -> None:
        path = self.root / "data" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{label},{name} document {i} about {label}\n"
                                for label in LABELS for i in range(10)), "utf-8")

    def declare(self, *train: str, active: str | None = None) -> None:
        for name in train:
            if not (self.root / "data" / f"{name}.csv").exists():
                self.data(name)
        path = self.root / SPEC
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = self.spec_text().splitlines(keepends=True) if path.exists() else []
        marked = [line for line in kept if line.startswith("activeModel:")]
        text = spec_text(*train, active=active, write_back=self.write_back)
        if active is None and marked and "# flywheel:policy" in marked[0]:
            text += marked[0]  # the policy's own line stays, as a person editing would keep it
        path.write_text(text, "utf-8")

    def spec_text(self) -> str:
        return (self.root / SPEC).read_text("utf-8")

    def reconcile(self) -> ReconcileResult:
        return reconcile(self.root, lake=self.lake, executor=self.executor,
                         clock=lambda: self.now, report=self.events.append,
                         gitops=GitOps(commit=False))

    def ok(self) -> ReconcileResult:
        result = self.reconcile()
        assert result.ok, [str(e) for e in result.all_errors]
        return result

    @property
    def observed(self) -> Observed:
        return self.lake.observe(NAME)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


# one iteration ---------------------------------------------------------------------------------


def test_an_iteration_records_training_evaluating_completed_with_the_claimed_version(
        repo: Repo) -> None:
    result = repo.ok()
    (flywheel,) = result.flywheels
    record = flywheel.iteration
    assert record is not None and record.status is IterationStatus.COMPLETED
    statuses = [w[2] for w in repo.lake.writes if w[:2] == ("iteration",
                                                            record.flywheel_iteration_id)]
    assert statuses == ["TRAINING", "EVALUATING", "COMPLETED"]
    assert record.claimed_model_version == record.trained_model_version == "v1"
    version = repo.observed.versions["v1"]
    assert version.sha256 == record.claimed_model_sha256
    assert version.file == "lake/packages/models/v1.skops"
    assert version.creation_time == START  # the reconcile's clock, not the wall clock
    assert record.creation_time == record.end_time == START
    assert repo.lake.tracked_models(NAME) == {"v1"}
    assert abs(record.trained_f1 - 0.9) < 1e-9  # the executor's canned evaluation


def test_the_coordinator_writes_in_the_documented_order_around_the_executors_steps(
        repo: Repo) -> None:
    repo.executor.steps = repo.lake.writes  # one journal: the lake's writes and the steps
    repo.ok()
    (record,) = repo.observed.iterations
    it = record.flywheel_iteration_id
    assert repo.lake.writes == [
        ("check", NAME),                       # the executor's pre-flight, nothing recorded
        ("status", NAME),                      # the status, at the iteration's start
        ("iteration", it, "TRAINING"),         # 1. before any pipeline work
        ("write_pipeline", it),                # 2.
        ("session", it),
        ("train", it),
        ("iteration", it, "EVALUATING"),       # 3. the claim, before any model file
        ("evaluate", it),
        ("model", NAME, "v1"),                 # 4. copied into the lake, then recorded
        ("track", it),
        ("closed", it),
        ("evaluation", it, "trained"),         # 5. evaluations, then the version record
        ("version", NAME, "v1"),
        ("iteration", it, "COMPLETED"),        # 6. COMPLETED, then the promotion
        ("status", NAME),
        ("history", NAME),
    ]


def test_a_second_reconcile_with_nothing_new_writes_nothing(repo: Repo) -> None:
    repo.ok()
    before = list(repo.lake.writes)
    result = repo.ok()
    assert not result.changed and result.flywheels[0].plan.up_to_date
    assert repo.lake.writes == before
    assert repo.executor.runs == 1


def test_the_active_model_is_scored_and_its_evaluation_kept(repo: Repo) -> None:
    repo.ok()
    repo.declare("v1", "v2")
    repo.executor.active_f1 = 0.7
    repo.ok()
    last = repo.observed.iterations[-1]
    assert last.evaluated_model_version == "v1"
    assert abs(last.active_f1 - 0.7) < 1e-9
    assert repo.lake.evaluation(NAME, last.flywheel_iteration_id, "active") is not None
    assert last.new_datasets == ["v2"]


# failures --------------------------------------------------------------------------------------


def test_a_transient_failure_leaves_failed_and_a_released_number_the_retry_reuses(
        repo: Repo) -> None:
    repo.executor.fail_at = "evaluate"
    repo.executor.error = TransientError("dvc repro evaluate: the stage command was killed")
    result = repo.reconcile()
    assert not result.ok and isinstance(result.flywheels[0].error, TransientError)
    (failed,) = repo.observed.iterations
    assert failed.status is IterationStatus.FAILED and failed.retryable
    assert failed.claimed_model_version == "v1"
    assert repo.observed.released() == {"v1"} and repo.observed.versions == {}

    repo.executor.fail_at = None
    assert not repo.ok().changed  # inside the back-off: nothing runs
    repo.now += BACKOFF_SECONDS + 1
    retried = repo.ok().flywheels[0].iteration
    assert retried is not None and retried.attempt == 2
    assert retried.trained_model_version == "v1"  # the released number, claimed again


def test_a_model_left_by_a_failed_archive_is_removed_and_the_retry_archives_the_same_number(
        repo: Repo) -> None:
    repo.executor.fail_at = "track"
    repo.executor.error = TransientError("dvc add: a file operation failed")
    assert not repo.reconcile().ok
    assert set(repo.lake.model_files(NAME)) == {"v1"}  # copied, never recorded
    repo.executor.fail_at = None
    repo.now += BACKOFF_SECONDS + 1
    repo.ok()
    observed = repo.observed
    assert set(observed.versions) == {"v1"}
    repo.lake.check_models(NAME, observed.versions)  # the file is the retry's, not the orphan
    assert observed.iterations[-1].trained_model_version == "v1"


def test_a_failure_that_is_not_transient_is_not_retried(repo: Repo) -> None:
    repo.executor.fail_at = "train"
    repo.executor.error = PipelineError("dvc repro train failed: bad recipe")
    assert not repo.reconcile().ok
    (failed,) = repo.observed.iterations
    assert failed.status is IterationStatus.FAILED and not failed.retryable
    assert failed.claimed_model_version is None  # failed before the claim
    repo.now += 10 * BACKOFF_SECONDS
    result = repo.ok()
    assert not result.changed and "not retried" in result.flywheels[0].plan.notes[0]


def test_an_unexpected_exception_in_the_executor_is_an_internal_failure(repo: Repo) -> None:
    repo.executor.fail_at = "evaluate"
    repo.executor.error = ZeroDivisionError("division by zero")
    with pytest.raises(ZeroDivisionError):
        repo.reconcile()
    (failed,) = repo.observed.iterations
    assert failed.status is IterationStatus.FAILED and not failed.retryable
    assert failed.message == "INTERNAL: ZeroDivisionError: division by zero"


# promotion -------------------------------------------------------------------------------------


def test_the_policy_promotes_a_better_version_and_keeps_the_active_one_otherwise(
        repo: Repo) -> None:
    repo.executor.f1s = [0.8, 0.9, 0.7]
    repo.ok()
    assert repo.observed.active_model == "v1"
    repo.declare("v1", "v2")
    repo.executor.active_f1 = 0.8
    repo.ok()
    status = repo.observed.status
    assert status.active_model == "v2" and not status.pinned
    promotion = status.promotions[-1]
    assert (promotion.kind, promotion.previous_version) == (PromotionKind.POLICY, "v1")
    assert promotion.flywheel_iteration_id == repo.observed.iterations[-1].flywheel_iteration_id

    repo.declare("v1", "v2", "v3")
    repo.executor.active_f1 = 0.9
    repo.ok()
    last = repo.observed.iterations[-1]
    assert last.trained_model_version == "v3" and not last.decision.promote
    assert repo.observed.active_model == "v2" and len(repo.observed.status.promotions) == 2


def test_a_persons_pin_wins_over_the_policy(repo: Repo) -> None:
    repo.executor.f1s = [0.8, 0.9, 0.99]
    repo.ok()
    repo.declare("v1", "v2")
    repo.ok()
    assert repo.observed.active_model == "v2"

    repo.declare("v1", "v2", active="v1")
    plan = repo.ok().flywheels[0].plan
    assert [type(a) for a in plan.actions] == [Pin]
    status = repo.observed.status
    assert (status.active_model, status.pinned) == ("v1", True)
    assert status.promotions[-1].kind is PromotionKind.PIN

    repo.declare("v1", "v2", "v3", active="v1")  # a far better version arrives
    repo.executor.active_f1 = 0.5
    repo.ok()
    last = repo.observed.iterations[-1]
    assert last.trained_model_version == "v3" and not last.decision.promote
    assert "pinned to v1" in last.decision.reason
    assert repo.observed.active_model == "v1"


def test_a_pin_then_an_unpin_hands_the_choice_back_to_the_policy(repo: Repo) -> None:
    repo.executor.f1s = [0.8, 0.9]
    repo.ok()
    repo.declare("v1", "v2")
    repo.executor.active_f1 = 0.8
    repo.ok()
    repo.declare("v1", "v2", active="v1")
    repo.ok()
    assert repo.observed.status.pinned

    repo.declare("v1", "v2")  # the pin removed
    plan = repo.ok().flywheels[0].plan
    (unpin,) = plan.actions
    assert isinstance(unpin, Unpin) and unpin.version == "v2"
    status = repo.observed.status
    assert (status.active_model, status.pinned) == ("v2", False)
    promotion = status.promotions[-1]
    assert promotion.kind is PromotionKind.POLICY and "pin removed" in promotion.reason
    assert [p.kind for p in status.promotions] == [PromotionKind.POLICY, PromotionKind.POLICY,
                                                   PromotionKind.PIN, PromotionKind.POLICY]


def test_a_decision_a_crash_kept_from_being_applied_is_applied_next_time(repo: Repo) -> None:
    repo.ok()
    status = repo.observed.status
    status.active_model, status.promotions = None, []  # as if killed before the promotion
    repo.lake.write_status(status)
    plan = repo.ok().flywheels[0].plan
    assert [type(a) for a in plan.actions] == [ApplyDecision]
    assert repo.observed.active_model == "v1"


# write-back: plan -> apply rounds ---------------------------------------------------------------


def test_a_promotion_is_written_back_in_the_same_reconcile(tmp_path: Path) -> None:
    repo = Repo(tmp_path, write_back=True)
    repo.executor.f1s = [0.8, 0.9]
    repo.ok()
    assert repo.spec_text().endswith("activeModel: v1  # flywheel:policy\n")
    assert [type(a) for a in repo.ok().flywheels[0].plan.actions] == []  # settled at once

    repo.declare("v1", "v2")  # keeps the policy's line
    repo.executor.active_f1 = 0.8
    result = repo.ok()
    assert [type(a) for a in result.flywheels[0].plan.actions] == [Iterate]  # as planned first
    assert repo.spec_text().endswith("activeModel: v2  # flywheel:policy\n")
    status = repo.observed.status
    assert (status.active_model, status.pinned) == ("v2", False)  # the new line is no pin
    assert status.write_back.version == "v2" and not status.write_back.pending
    wrote = [e for e in repo.events if isinstance(e, WroteBack)]
    assert [(e.previous, e.version) for e in wrote] == [(None, "v1"), ("v1", "v2")]
    assert sum(isinstance(e, Planned) for e in repo.events) == 3  # one per reconcile
    assert not repo.ok().changed


def test_a_pending_write_back_is_finished_by_the_next_reconcile(tmp_path: Path) -> None:
    repo = Repo(tmp_path, write_back=True)
    repo.ok()
    status = repo.observed.status
    status.write_back = status.write_back.model_copy(update={"pending": True})
    repo.lake.write_status(status)
    plan = repo.ok().flywheels[0].plan
    assert [type(a) for a in plan.actions] == [WriteSpec]
    assert not repo.observed.status.write_back.pending


# requests --------------------------------------------------------------------------------------


def test_a_request_with_nothing_to_iterate_is_acknowledged(repo: Repo) -> None:
    from reconciler.adapters.requests import new_request

    repo.ok()
    token = new_request(repo.root, NAME)
    plan = repo.ok().flywheels[0].plan
    assert [type(a) for a in plan.actions] == [Acknowledge]
    assert repo.observed.status.last_handled_iteration_request == token
    assert repo.executor.runs == 1


# crash ordering: a "kill" right after each write -----------------------------------------------


class Crash(BaseException):
    """Stands for SIGKILL: no handler of the engine catches it (only ``finally`` runs, as the
    kernel releases a dead process's locks)."""


class Tripwire(list):
    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def append(self, item: object) -> None:
        super().append(item)
        if len(self) == self.after:
            raise Crash(item)


WRITES = 11  # an iteration with a promotion and its write-back, from nothing


def test_the_crash_cases_cover_every_write() -> None:
    assert _run_through(Path("unused"), None) == WRITES


@pytest.mark.parametrize("after", range(1, WRITES + 1))
def test_killed_after_each_write_then_restarted(tmp_path: Path, after: int) -> None:
    _run_through(tmp_path, after)


def _run_through(tmp_path: Path, after: int | None) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        repo = Repo(Path(scratch) if after is None else tmp_path, write_back=True)
        if after is None:
            repo.ok()
            return len(repo.lake.writes)
        repo.lake.writes = Tripwire(after)
        with pytest.raises(Crash):
            repo.reconcile()
        repo.lake.writes = []
        first = repo.ok()  # the restart settles what the "crash" left
        assert all(it.status.terminal for it in repo.observed.iterations)
        repo.now += 3600  # after any back-off
        repo.ok()
        assert not repo.ok().changed, "the restarts left work undone"
        observed = repo.observed
        assert set(observed.versions) == {"v1"}  # one number, never given twice
        repo.lake.check_models(NAME, observed.versions)  # every model file has its record
        assert observed.active_model == "v1" and not observed.status.pinned
        assert not observed.status.write_back.pending
        assert repo.spec_text().endswith("activeModel: v1  # flywheel:policy\n")
        assert not repo.lake.history_stale(NAME, observed.iterations)
        assert first.ok
        return after


# the fast tier stays fast ----------------------------------------------------------------------


def test_the_engine_runs_without_importing_dvc_or_scikit_learn(tmp_path: Path) -> None:
    """In a fresh interpreter (this one may have imported them for other tests)."""
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from test_engine import Repo
repo = Repo(Path({str(tmp_path)!r}), write_back=True)
repo.ok()
repo.declare("v1", "v2")
repo.ok()
assert len(repo.observed.versions) == 2, repo.observed.versions
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dvc", "sklearn", "skops"))
print(__import__("json").dumps(loaded))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
