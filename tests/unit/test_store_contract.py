"""One contract for the store port, run against the lake on disk and its in-memory twin.

Whatever passes here may stand in for :class:`reconciler.adapters.lake.Lake` in the engine
(:class:`reconciler.runtime.store.LakeStore`), as kopf's persistence suite does for its
storages.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import pytest

from reconciler.adapters.lake import Lake
from reconciler.adapters.remembering_lake import RememberingLake
from reconciler.core.layout import Workspace
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelMetrics,
    ModelVersionRecord,
    Observed,
)
from reconciler.errors import StateError
from reconciler.runtime.store import LakeStore
from reconciler.testing import InMemoryLake, canned_evaluation

NAME = "packages"
ID1, ID2 = "20260101T000000Z", "20260101T000001Z"


@pytest.fixture(params=["lake", "in-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LakeStore:
    return Lake(tmp_path) if request.param == "lake" else InMemoryLake(tmp_path)


def iteration(iteration_id: str = ID1, status: IterationStatus = IterationStatus.TRAINING,
              **fields: object) -> IterationRecord:
    return IterationRecord(flywheel_name=NAME, flywheel_iteration_id=iteration_id,
                           status=status, creation_time=1.0, input_digest="d" * 64,
                           **fields)  # type: ignore[arg-type]


def version(number: str, sha256: str, iteration_id: str = ID1) -> ModelVersionRecord:
    return ModelVersionRecord(version=number, flywheel_iteration_id=iteration_id,
                              creation_time=1.0, file=Workspace(NAME).model_file(number)
                              .as_posix(), sha256=sha256, size=5, mode="MULTI_CLASS",
                              labels=["a", "b"], recipe={}, datasets=[],
                              trained_model_metrics=ModelMetrics(average_f1_score=0.9))


def model(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    source = tmp_path / f"model-{hashlib.md5(data).hexdigest()}.bin"
    source.write_bytes(data)
    return source, hashlib.sha256(data).hexdigest()


def test_both_implement_every_member_of_the_port_with_its_parameters() -> None:
    members = [n for n, v in vars(LakeStore).items()
               if callable(v) and not n.startswith("_")]
    assert len(members) >= 15
    for cls in (Lake, InMemoryLake):
        for name in members:
            expected = list(inspect.signature(getattr(LakeStore, name)).parameters)
            assert list(inspect.signature(getattr(cls, name)).parameters) == expected, \
                (cls.__name__, name)


def test_an_unknown_flywheel_observes_as_empty(store: LakeStore) -> None:
    assert store.observe(NAME) == Observed()


def test_a_name_that_is_not_a_flywheel_name_is_refused(store: LakeStore) -> None:
    for bad in ("../x", "a/b", ""):
        with pytest.raises(StateError):
            store.observe(bad)


def test_status_round_trips_and_a_caller_mutating_its_copy_changes_nothing(
        store: LakeStore) -> None:
    status = FlywheelStatus(flywheel_name=NAME, creation_time=1.0, active_model="v1")
    store.write_status(status)
    status.active_model = "v9"
    observed = store.observe(NAME)
    assert observed.status is not None and observed.status.active_model == "v1"
    observed.status.active_model = "v7"
    assert store.observe(NAME).active_model == "v1"


def test_iterations_are_observed_in_id_order(store: LakeStore) -> None:
    store.write_iteration(iteration(ID2))
    store.write_iteration(iteration(ID1))
    assert [it.flywheel_iteration_id for it in store.observe(NAME).iterations] == [ID1, ID2]


def test_an_unfinished_iteration_record_is_rewritten_a_finished_one_is_immutable(
        store: LakeStore) -> None:
    store.write_iteration(iteration(status=IterationStatus.TRAINING))
    store.write_iteration(iteration(status=IterationStatus.EVALUATING,
                                    claimed_model_version="v1"))
    store.write_iteration(iteration(status=IterationStatus.FAILED, message="boom"))
    with pytest.raises(StateError, match="finished and immutable"):
        store.write_iteration(iteration(status=IterationStatus.COMPLETED))
    (record,) = store.observe(NAME).iterations
    assert record.status is IterationStatus.FAILED and record.claimed_model_version is None


def test_a_version_record_is_immutable(store: LakeStore) -> None:
    store.write_version(NAME, version("v1", "a" * 64))
    with pytest.raises(StateError, match="immutable"):
        store.write_version(NAME, version("v1", "b" * 64))
    assert store.observe(NAME).versions["v1"].sha256 == "a" * 64


def test_evaluations_round_trip_and_a_missing_one_is_none(store: LakeStore) -> None:
    record = canned_evaluation(["a", "b"], 0.8)
    assert store.evaluation(NAME, ID1, "trained") is None
    store.write_evaluation(NAME, ID1, "trained", record)
    assert store.evaluation(NAME, ID1, "trained") == record
    assert store.evaluation(NAME, ID1, "active") is None
    with pytest.raises(StateError):
        store.evaluation(NAME, "not-an-id", "trained")
    with pytest.raises(StateError):
        store.evaluation(NAME, ID1, "other")


def test_history_is_stale_until_written_and_again_after_a_completed_iteration(
        store: LakeStore) -> None:
    running = [iteration(ID1, IterationStatus.TRAINING)]
    assert not store.history_stale(NAME, running)  # nothing completed, nothing to show
    done = [iteration(ID1, IterationStatus.COMPLETED, trained_model_version="v1",
                      trained_model_metrics=ModelMetrics(average_f1_score=0.8))]
    assert store.history_stale(NAME, done)
    store.write_history(NAME, done)
    assert not store.history_stale(NAME, done)
    more = [*done, iteration(ID2, IterationStatus.COMPLETED, trained_model_version="v2",
                             trained_model_metrics=ModelMetrics(average_f1_score=0.9))]
    assert store.history_stale(NAME, more)


def test_a_model_is_archived_once_and_never_over_another(store: LakeStore,
                                                         tmp_path: Path) -> None:
    source, _ = model(tmp_path, b"model one")
    archived = store.archive_model(NAME, "v1", source)
    assert archived == store.root / str(Workspace(NAME).model_file("v1"))
    assert set(store.model_files(NAME)) == {"v1"}
    other, _ = model(tmp_path, b"model two")
    with pytest.raises(StateError, match="never overwritten"):
        store.archive_model(NAME, "v1", other)
    assert store.tracked_models(NAME) == set()  # nothing recorded the folder yet


def test_the_models_folder_is_checked_against_the_records(store: LakeStore,
                                                          tmp_path: Path) -> None:
    source, sha256 = model(tmp_path, b"model one")
    store.check_models(NAME, {})  # nothing recorded, nothing there
    with pytest.raises(StateError, match="missing"):
        store.check_models(NAME, {"v1": version("v1", sha256)})
    store.archive_model(NAME, "v1", source)
    with pytest.raises(StateError, match="no version record"):
        store.check_models(NAME, {})
    store.check_models(NAME, {}, archiving=("v1", sha256))
    store.check_models(NAME, {"v1": version("v1", sha256)})
    with pytest.raises(StateError, match="does not match"):
        store.check_models(NAME, {"v1": version("v1", "0" * 64)})


def test_only_a_failed_iterations_leftover_model_is_removed_as_an_orphan(
        store: LakeStore, tmp_path: Path) -> None:
    leftover, sha256 = model(tmp_path, b"half done")
    store.archive_model(NAME, "v1", leftover)
    failed = iteration(ID1, IterationStatus.FAILED, claimed_model_version="v1",
                       claimed_model_sha256="f" * 64)
    assert store.remove_orphans(NAME, Observed(iterations=(failed,))) == []  # other content
    failed = failed.model_copy(update={"claimed_model_sha256": sha256})
    assert store.remove_orphans(NAME, Observed(iterations=(failed,))) == ["v1"]
    assert dict(store.model_files(NAME)) == {}


def test_the_flywheel_lock_is_exclusive_and_released(store: LakeStore) -> None:
    with store.try_flywheel_lock(NAME) as first:
        assert first
        with store.try_flywheel_lock(NAME) as second:
            assert not second
        with store.try_flywheel_lock("other") as elsewhere:
            assert elsewhere
    with store.try_flywheel_lock(NAME) as again:
        assert again


def test_removing_stale_temp_files_of_a_fresh_flywheel_removes_nothing(
        store: LakeStore) -> None:
    assert store.remove_stale_temp_files(NAME) == []


# the read side's remembering lake: what it keeps is never staler than the files ---------


def test_a_remembered_flywheel_is_read_again_once_a_file_of_it_changes(tmp_path: Path) -> None:
    lake = RememberingLake(tmp_path)
    lake.write_iteration(iteration())
    first = lake.observe(NAME)
    assert lake.observe(NAME) is first  # nothing changed: the records kept
    lake.write_iteration(iteration(ID2))
    assert [it.flywheel_iteration_id for it in lake.observe(NAME).iterations] == [ID1, ID2]
    lake.write_status(FlywheelStatus(flywheel_name=NAME, creation_time=1.0))
    assert lake.observe(NAME).status is not None
    plain = Lake(tmp_path).observe(NAME)
    assert lake.observe(NAME) == plain


def test_a_record_edited_in_place_is_seen_and_a_corrupt_one_refused_every_time(
        tmp_path: Path) -> None:
    lake = RememberingLake(tmp_path)
    lake.write_iteration(iteration())
    lake.observe(NAME)
    path = tmp_path / Workspace(NAME).iterations / f"{ID1}.json"
    with path.open("a") as handle:  # an edit in place: same inode, new size
        handle.write("garbage")
    for _ in range(2):
        with pytest.raises(StateError, match="corrupt lake record"):
            lake.observe(NAME)
