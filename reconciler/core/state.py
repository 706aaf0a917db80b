"""Observed state: the records the data lake holds about a flywheel.

Records are stored as JSON with Comprehend-flavoured camelCase keys. An iteration record is
mutable while the iteration runs and immutable once it reaches a terminal status; model version
records are immutable from the start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel, to_pascal

from reconciler.core.kinds import DatasetType, Mode, ModelVersion


class IterationStatus(StrEnum):
    TRAINING = "TRAINING"
    EVALUATING = "EVALUATING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOP_REQUESTED = "STOP_REQUESTED"  # Comprehend's; never produced: a stop goes to STOPPED
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in (IterationStatus.COMPLETED, IterationStatus.FAILED, IterationStatus.STOPPED)


class _Record(BaseModel):
    #: Finite numbers only: a NaN or an infinity is not JSON, and no figure is either.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore",
                              allow_inf_nan=False)

    def to_json_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class PromotionKind(StrEnum):
    PIN = "PIN"  # a person's pin (the spec's activeModel)
    POLICY = "POLICY"  # the promotion policy's choice


class TestSource(StrEnum):
    """Where an iteration's test documents came from."""

    TEST_DATASETS = "TEST datasets"
    HOLDOUT = "holdout"


class ModelMetrics(BaseModel):
    """Comprehend's FlywheelModelEvaluationMetrics: the four averages, in 0..1.

    Stored and shown with Comprehend's keys (``AverageF1Score``…); a figure a model type does not
    define (an entity recognizer's accuracy) is None and left out.
    """

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="ignore",
                              allow_inf_nan=False, frozen=True)

    average_f1_score: float | None = None
    average_precision: float | None = None
    average_recall: float | None = None
    average_accuracy: float | None = None

    def figures(self) -> dict[str, float]:
        """Comprehend's key -> figure, for the figures there are (tables, JSON)."""
        return self.model_dump(by_alias=True, exclude_none=True)


#: Comprehend's names of the four figures, in the order tables show them.
METRIC_NAMES = tuple(info.alias or name for name, info in ModelMetrics.model_fields.items())


class DatasetRef(_Record):
    """A dataset version as an iteration consumed it."""

    name: str
    type: DatasetType
    path: str
    md5: str
    number_of_documents: int | None = None


class SourceRevision(_Record):
    """The git revision a record was made from: lineage from a model back to its spec commit.

    ``dirty`` says the spec file or one of its datasets differed from ``commit`` at the time
    (uncommitted edits), so the commit alone does not reproduce it.
    """

    commit: str | None = None
    dirty: bool = False
    reconciler_version: str | None = None


class Decision(_Record):
    """What the promotion policy concluded in an iteration, and why."""

    promote: bool
    reason: str
    trained_f1: float | None = None
    active_f1: float | None = None
    min_f1: float | None = None
    min_improvement: float | None = None


class DatasetDrift(_Record):
    """How one new dataset (or all new TRAIN data together) differs from the active model's
    training data (:mod:`reconciler.core.drift`): label PSI, unseen-token share, lengths in
    characters; a figure that could not be computed is None."""

    label_psi: float | None = None
    oov_share: float | None = None
    mean_length: float | None = None
    median_length: float | None = None
    length_ratio: float | None = None
    documents: int = 0


class DriftReference(_Record):
    """The data drift is measured against: the active version's TRAIN datasets."""

    version: str
    documents: int = 0
    vocabulary: int = 0  # distinct tokens kept
    vocabulary_capped: bool = False  # past the cap: unseen-token shares are upper bounds
    mean_length: float | None = None
    median_length: float | None = None


class DataDrift(_Record):
    """An iteration's data drift: each new dataset (by name), and all new TRAIN data together
    (the TRAIN datasets the reference version was not trained on)."""

    reference: DriftReference
    datasets: dict[str, DatasetDrift] = Field(default_factory=dict)
    new_train_data: DatasetDrift | None = None


class IterationRecord(_Record):
    flywheel_name: str
    flywheel_iteration_id: str
    status: IterationStatus
    message: str = ""
    creation_time: float
    end_time: float | None = None
    input_digest: str
    attempt: int = 1
    retryable: bool = False
    #: FAILED because the reconciler running it died (SIGKILL, a power cut), not because of the
    #: iteration: the next reconcile resumes it at once, without the back-off.
    interrupted: bool = False
    datasets: list[DatasetRef] = Field(default_factory=list)
    new_datasets: list[str] = Field(default_factory=list)
    recipe: dict[str, object] = Field(default_factory=dict)
    test_source: TestSource | None = None
    number_of_train_documents: int | None = None
    number_of_test_documents: int | None = None
    evaluated_model_version: str | None = None
    evaluated_model_metrics: ModelMetrics | None = None
    trained_model_version: str | None = None
    trained_model_metrics: ModelMetrics | None = None
    #: The version number this iteration archives its model under, and that model's sha256,
    #: recorded before the model is copied into the lake: a model file found there without a
    #: version record is this iteration's only when both match (:meth:`Observed.orphans`).
    claimed_model_version: str | None = None
    claimed_model_sha256: str | None = None
    decision: Decision | None = None
    duration_seconds: float | None = None
    source_revision: SourceRevision | None = None
    iteration_request: str | None = None  # the `flywheel iterate` request it answered
    #: The new datasets measured against the active model's training data (None: nothing was
    #: measured, e.g. no active model yet, or a record from before drift was measured).
    drift: DataDrift | None = None

    @property
    def trained_f1(self) -> float | None:
        """The trained model's AverageF1Score (None before it is scored)."""
        return self.trained_model_metrics.average_f1_score if self.trained_model_metrics else None

    @property
    def active_f1(self) -> float | None:
        """The active model's AverageF1Score on this iteration's test data (None: not scored)."""
        metrics = self.evaluated_model_metrics
        return metrics.average_f1_score if metrics else None


class ModelVersionRecord(_Record):
    """An immutable trained model version (``v1``, ``v2``…) and what produced it."""

    version: str
    flywheel_iteration_id: str
    creation_time: float
    file: str
    sha256: str
    size: int
    mode: Mode
    labels: list[str]
    recipe: dict[str, object]
    datasets: list[DatasetRef]
    trained_model_metrics: ModelMetrics
    source_revision: SourceRevision | None = None


class PromotionRecord(_Record):
    """One change of the active model: what, when, why."""

    version: ModelVersion
    previous_version: ModelVersion | None = None
    time: float
    kind: PromotionKind
    reason: str
    flywheel_iteration_id: str | None = None
    spec_file: str | None = None
    source_revision: SourceRevision | None = None


class WriteBack(_Record):
    """A policy promotion written back into the spec's ``activeModel`` line.

    ``pending`` until the line is edited (and committed, in a git repository): a reconcile that
    finds it pending finishes it. ``version`` is what the policy last wrote, so a managed line
    holding anything else was edited by a person, and that edit is a pin.
    """

    version: ModelVersion
    previous: ModelVersion | None = None
    pending: bool = True
    time: float
    commit: str | None = None
    note: str | None = None


class FlywheelStatus(_Record):
    """The mutable part of a flywheel's observed state."""

    flywheel_name: str
    creation_time: float
    active_model: str | None = None
    pinned: bool = False
    promotions: list[PromotionRecord] = Field(default_factory=list)
    write_back: WriteBack | None = None
    last_handled_iteration_request: str | None = None


@dataclass(frozen=True)
class Observed:
    """Everything the lake knows about one flywheel, as read at the start of a reconcile."""

    status: FlywheelStatus | None = None
    iterations: tuple[IterationRecord, ...] = ()
    versions: dict[str, ModelVersionRecord] = field(default_factory=dict)

    @property
    def active_model(self) -> str | None:
        return self.status.active_model if self.status else None

    def copy(self) -> Observed:
        """A deep copy: records are mutable, and a store hands out copies of what it keeps."""
        return Observed(
            status=self.status.model_copy(deep=True) if self.status else None,
            iterations=tuple(it.model_copy(deep=True) for it in self.iterations),
            versions={v: r.model_copy(deep=True) for v, r in self.versions.items()})

    @property
    def latest(self) -> IterationRecord | None:
        return self.iterations[-1] if self.iterations else None

    @property
    def unfinished(self) -> bool:
        """Whether an iteration has not reached a terminal status (it is training, evaluating
        or being stopped, or the reconciler running it died): a reconcile has to finish it."""
        return any(not it.status.terminal for it in self.iterations)

    def completed(self) -> list[IterationRecord]:
        return [it for it in self.iterations if it.status is IterationStatus.COMPLETED]

    def measured(self, version: str | None) -> tuple[float, str] | None:
        """``version``'s own F1 and the iteration that measured it: the newest completed
        iteration that trained or evaluated that version (its figure on that iteration's test
        data). Wherever a version is named, these are the figures that go with it."""
        if version is None:
            return None
        for record in reversed(self.completed()):
            for named, f1 in ((record.trained_model_version, record.trained_f1),
                              (record.evaluated_model_version, record.active_f1)):
                if named == version and f1 is not None:
                    return f1, record.flywheel_iteration_id
        return None

    def known_versions(self, files: Iterable[str] = (), tracked: Iterable[str] = ()) -> set[str]:
        """Every version number something knows: a version record, an iteration record (the
        version it trained or evaluated, the claim of an unfinished one), the
        status (the active model, every promotion, the write-back), a model file in
        ``lake/<name>/models/`` (``files``) and a name ``models.dvc`` tracks (``tracked``). A
        number a failed iteration claimed but never recorded (:meth:`released`) is not known
        because ``models.dvc`` still names it: its model file was that iteration's leftover.
        """
        return self._recorded() | set(files) | (set(tracked) - self.released())

    def _recorded(self) -> set[str]:
        known = set(self.versions)
        for it in self.iterations:
            known.update(v for v in (it.trained_model_version, it.evaluated_model_version) if v)
            if not it.status.terminal and it.claimed_model_version:
                known.add(it.claimed_model_version)
        if self.status is not None:
            known.update(v for v in (self.status.active_model,) if v)
            for promotion in self.status.promotions:
                known.update(v for v in (promotion.version, promotion.previous_version) if v)
            if self.status.write_back is not None:
                known.update(v for v in (self.status.write_back.version,
                                         self.status.write_back.previous) if v)
        return known

    def released(self) -> set[str]:
        """Numbers claimed only by iterations that failed or stopped before recording the
        version: no record describes a model under them, so they may be claimed again once
        their orphan model file is gone (:meth:`orphans`)."""
        claimed = {it.claimed_model_version for it in self.iterations
                   if it.status.terminal and it.status is not IterationStatus.COMPLETED
                   and it.claimed_model_version}
        return claimed - self._recorded()

    def orphans(self) -> dict[str, set[str]]:
        """Released version -> the sha256s its failed iterations claimed: a model file by that
        name with one of those contents is such an iteration's leftover."""
        released = self.released()
        found: dict[str, set[str]] = {}
        for it in self.iterations:
            if it.claimed_model_version in released and it.claimed_model_sha256:
                found.setdefault(it.claimed_model_version, set()).add(it.claimed_model_sha256)
        return found

    def next_version(self, files: Iterable[str] = (), tracked: Iterable[str] = ()) -> str:
        """One past every version number anything knows (:meth:`known_versions`): a number is
        never given twice, even when a version record was deleted."""
        numbers = [version_number(v) for v in self.known_versions(files, tracked)
                   if re.fullmatch(r"v[1-9][0-9]{0,8}", v)]
        return f"v{max(numbers, default=0) + 1}"

    def consumed_datasets(self) -> dict[str, tuple[str, str]]:
        """Dataset name -> (md5, iteration id) of the first completed iteration that used it."""
        consumed: dict[str, tuple[str, str]] = {}
        for iteration in self.completed():
            for ref in iteration.datasets:
                consumed.setdefault(ref.name, (ref.md5, iteration.flywheel_iteration_id))
        return consumed


def version_number(version: str) -> int:
    """``v12`` -> 12: versions sort by this, never as text (``v10`` after ``v9``)."""
    return int(version[1:])
