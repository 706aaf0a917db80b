"""Fakes of the project's own ports, for tests that exercise the engine in milliseconds.

* :class:`InMemoryLake` is a working :class:`~reconciler.runtime.store.LakeStore` held in
  memory, with the lake's rules (finished iteration records and version records immutable, a
  model file never archived over another, flywheel names checked). ``writes`` logs every write
  in order, which is what crash-ordering expectations are stated against.
* :class:`RecordingExecutor` is an :class:`~reconciler.runtime.executor.IterationExecutor`
  that runs no pipeline: it writes canned outputs (a model file, two evaluations with the F1
  asked for) and records the steps it was asked to do.

These are fakes of our interfaces, not mocks of DVC, git or scikit-learn: nothing here imports
them. ``tests/unit/test_store_contract.py`` holds :class:`InMemoryLake` to what
:class:`~reconciler.adapters.lake.Lake` does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.adapters.dataset_files import file_md5
from reconciler.adapters.lake import EVALUATIONS, ITERATION_ID_PATTERN, check_name
from reconciler.adapters.loader import SpecFile
from reconciler.core.layout import Workspace
from reconciler.core.metrics import evaluate
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    ModelVersionRecord,
    Observed,
    TestSource,
    version_number,
)
from reconciler.errors import PipelineError, StateError
from reconciler.runtime.executor import Evaluated, PipelineJob, Trained
from reconciler.runtime.stopping import StopRequest
from reconciler.runtime.store import Iterations

# the store ------------------------------------------------------------------------------------


@dataclass
class _Flywheel:
    status: FlywheelStatus | None = None
    iterations: dict[str, IterationRecord] = field(default_factory=dict)
    versions: dict[str, ModelVersionRecord] = field(default_factory=dict)
    evaluations: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    models: dict[str, bytes] = field(default_factory=dict)
    tracked: set[str] = field(default_factory=set)
    history: tuple[tuple[object, ...], ...] | None = None


class InMemoryLake:
    """The lake's records in memory (see the module docstring). ``root`` only names the paths
    model files would have (``root/lake/<name>/models/vN.skops``); nothing is written there."""

    def __init__(self, root: Path = Path("/in-memory")) -> None:
        self.root = root
        self._flywheels: dict[str, _Flywheel] = {}
        self._locked: set[str] = set()
        #: Every write, in order: ``("status", name)``, ``("iteration", id, STATUS)``,
        #: ``("version", name, vN)``, ``("evaluation", id, which)``, ``("model", name, vN)``,
        #: ``("history", name)``.
        self.writes: list[tuple[str, ...]] = []

    def _get(self, name: str) -> _Flywheel:
        check_name(name)
        return self._flywheels.setdefault(name, _Flywheel())

    def _shown(self, name: str, relative: object) -> str:
        return str(relative)

    # reading ------------------------------------------------------------------------------

    def observe(self, name: str) -> Observed:
        flywheel = self._get(name)
        ordered = tuple(flywheel.iterations[i] for i in sorted(flywheel.iterations))
        return Observed(status=flywheel.status, iterations=ordered,
                        versions=dict(flywheel.versions)).copy()

    def evaluation(self, name: str, iteration_id: str, which: str) -> dict[str, Any] | None:
        if not re.fullmatch(ITERATION_ID_PATTERN, iteration_id) or which not in EVALUATIONS:
            raise StateError(f"no evaluation {iteration_id[:40]!r}/{which[:20]!r}")
        found = self._get(name).evaluations.get((iteration_id, which))
        return _copy(found) if found is not None else None

    def history_stale(self, name: str, iterations: Iterations) -> bool:
        history = self._get(name).history
        if history is None:
            return any(it.status.value == "COMPLETED" for it in iterations)
        return history != _history(iterations)

    # writing ------------------------------------------------------------------------------

    def write_status(self, status: FlywheelStatus) -> None:
        self._get(status.flywheel_name).status = status.model_copy(deep=True)
        self.writes.append(("status", status.flywheel_name))

    def write_iteration(self, record: IterationRecord) -> None:
        flywheel = self._get(record.flywheel_name)
        existing = flywheel.iterations.get(record.flywheel_iteration_id)
        if existing is not None and existing.status.terminal:
            raise StateError("iteration record is finished and immutable",
                             file=self._shown(record.flywheel_name,
                                              Workspace(record.flywheel_name).iterations
                                              / f"{record.flywheel_iteration_id}.json"))
        flywheel.iterations[record.flywheel_iteration_id] = record.model_copy(deep=True)
        self.writes.append(("iteration", record.flywheel_iteration_id, record.status.value))

    def write_version(self, name: str, record: ModelVersionRecord) -> None:
        flywheel = self._get(name)
        if record.version in flywheel.versions:
            raise StateError("model version record already exists and is immutable",
                             file=self._shown(name, Workspace(name).versions
                                              / f"{record.version}.json"))
        flywheel.versions[record.version] = record.model_copy(deep=True)
        self.writes.append(("version", name, record.version))

    def write_evaluation(self, name: str, iteration_id: str, which: str,
                         record: dict[str, Any]) -> None:
        self._get(name).evaluations[(iteration_id, which)] = _copy(record)
        self.writes.append(("evaluation", iteration_id, which))

    def write_history(self, name: str, iterations: Iterations) -> None:
        flywheel, rows = self._get(name), _history(iterations)
        if flywheel.history != rows:  # like the file: written only when it changes
            flywheel.history = rows
            self.writes.append(("history", name))

    def remove_stale_temp_files(self, name: str) -> list[Path]:
        self._get(name)
        return []  # a write here is never half done

    # the models folder --------------------------------------------------------------------

    def model_files(self, name: str) -> Mapping[str, Path]:
        return {v: self._model_path(name, v) for v in self._get(name).models}

    def _model_path(self, name: str, version: str) -> Path:
        return self.root / str(Workspace(name).model_file(version))

    def tracked_models(self, name: str) -> set[str]:
        return set(self._get(name).tracked)

    def track(self, name: str) -> None:
        """What ``dvc add`` of the models folder records: every model file there now."""
        flywheel = self._get(name)
        flywheel.tracked = set(flywheel.models)

    def archive_model(self, name: str, version: str, source: Path) -> Path:
        flywheel = self._get(name)
        if version in flywheel.models:
            raise StateError("model file already exists: a model file is never overwritten "
                             f"(version {version} was to be archived there)",
                             file=str(Workspace(name).model_file(version)), flywheel=name)
        flywheel.models[version] = source.read_bytes()
        self.writes.append(("model", name, version))
        return self._model_path(name, version)

    def put_model(self, name: str, version: str, data: bytes) -> None:
        """A model file appearing in the folder by other means (a test's tampering)."""
        self._get(name).models[version] = data

    def delete_model(self, name: str, version: str) -> None:
        self._get(name).models.pop(version, None)

    def check_models(self, name: str, versions: dict[str, ModelVersionRecord],
                     archiving: tuple[str, str] | None = None) -> None:
        expected = {v: r.sha256 for v, r in versions.items()}
        if archiving is not None:
            expected[archiving[0]] = archiving[1]
        models = self._get(name).models
        for version in sorted(expected, key=version_number):
            shown = str(Workspace(name).model_file(version))
            if version not in models:
                raise StateError(f"model file of {version} is missing (recorded sha256 "
                                 f"{expected[version]})", file=shown, flywheel=name)
            found = hashlib.sha256(models[version]).hexdigest()
            if found != expected[version]:
                raise StateError(f"model file does not match its version record (recorded "
                                 f"sha256 {expected[version]}, found {found})", file=shown,
                                 flywheel=name)
        for version in sorted(set(models) - set(expected), key=version_number):
            raise StateError("no version record describes this model file",
                             file=str(Workspace(name).model_file(version)), flywheel=name)

    def remove_orphans(self, name: str, observed: Observed) -> list[str]:
        models, removed = self._get(name).models, []
        for version, sha256s in observed.orphans().items():
            data = models.get(version)
            if data is not None and hashlib.sha256(data).hexdigest() in sha256s:
                del models[version]
                removed.append(version)
        return removed

    # locking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def try_flywheel_lock(self, name: str) -> Iterator[bool]:
        if name in self._locked:
            yield False
            return
        self._locked.add(name)
        try:
            yield True
        finally:
            self._locked.discard(name)


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(record))
    return copied


def _history(iterations: Iterations) -> tuple[tuple[object, ...], ...]:
    """What ``f1_history.csv`` says: one row per COMPLETED iteration."""
    return tuple((it.flywheel_iteration_id, it.trained_f1, it.active_f1,
                  it.trained_model_version, it.evaluated_model_version)
                 for it in iterations if it.status.value == "COMPLETED")


# the executor ---------------------------------------------------------------------------------


def canned_evaluation(labels: list[str], f1: float, mode: str = "MULTI_CLASS") -> dict[str, Any]:
    """An evaluation record (``Evaluation.to_record``) whose average F1 is about ``f1``: 100
    test documents, each label right on a ``f1`` share of its documents."""
    truth, predicted = [], []
    for index in range(100):
        label = labels[index % len(labels)]
        right = (index // len(labels)) < round(f1 * 100 / len(labels))
        other = labels[(index + 1) % len(labels)]
        truth.append(frozenset({label}))
        predicted.append(frozenset({label if right else other}))
    return evaluate(mode, labels, truth, predicted).to_record()


@dataclass
class RecordingExecutor:
    """An executor that writes canned outputs instead of running a pipeline.

    ``f1s`` gives each iteration's trained-model F1 in turn (the last one repeats); the active
    model, when there is one, scores ``active_f1``. ``fail_at`` names a step (``"train"``,
    ``"evaluate"``, ``"track"``) that raises ``error`` instead. ``steps`` records every step as
    ``(step, iteration_id)``. ``lake``, when given, is told what the models folder tracks.
    """

    folder: Path
    f1s: list[float] = field(default_factory=lambda: [0.9])
    active_f1: float = 0.5
    fail_at: str | None = None
    error: Exception = field(default_factory=lambda: PipelineError("the stage failed"))
    lake: InMemoryLake | None = None
    steps: list[tuple[str, str]] = field(default_factory=list)
    runs: int = 0

    def check(self, root: Path, spec_file: SpecFile) -> None:
        self.steps.append(("check", spec_file.spec.name))

    def write_pipeline(self, job: PipelineJob) -> None:
        self.steps.append(("write_pipeline", job.iteration_id))

    @contextlib.contextmanager
    def session(self, job: PipelineJob, stop: StopRequest) -> Iterator[_RecordingSession]:
        self.steps.append(("session", job.iteration_id))
        f1 = self.f1s[min(self.runs, len(self.f1s) - 1)]
        self.runs += 1
        yield _RecordingSession(self, job, f1)
        self.steps.append(("closed", job.iteration_id))


class _RecordingSession:
    def __init__(self, executor: RecordingExecutor, job: PipelineJob, f1: float) -> None:
        self.executor, self.job, self.f1 = executor, job, f1
        self.labels = list(job.spec_file.spec.task.labels)

    def _step(self, step: str) -> None:
        self.executor.steps.append((step, self.job.iteration_id))
        if self.executor.fail_at == step:
            raise self.executor.error

    def train(self) -> Trained:
        self._step("train")
        model = self.executor.folder / f"{self.job.name}-{self.job.iteration_id}.model"
        model.parent.mkdir(parents=True, exist_ok=True)
        data = f"model of {self.job.name} {self.job.iteration_id} F1 {self.f1}".encode()
        model.write_bytes(data)
        # what a prepare stage reads: the declared files as they are now
        read = {d.path: file_md5(self.job.root / d.path)
                for d in self.job.spec_file.spec.datasets}
        return Trained(model=model, sha256=hashlib.sha256(data).hexdigest(), read=read,
                       locked={}, number_of_train_documents=100,
                       number_of_test_documents=100, test_source=TestSource.TEST_DATASETS)

    def discard_prepared(self) -> None:
        self.executor.steps.append(("discard_prepared", self.job.iteration_id))

    def evaluate(self) -> Evaluated:
        self._step("evaluate")
        active = (canned_evaluation(self.labels, self.executor.active_f1)
                  if self.job.active is not None else None)
        return Evaluated(trained=canned_evaluation(self.labels, self.f1), active=active)

    def track_models(self) -> None:
        self._step("track")
        if self.executor.lake is not None:
            self.executor.lake.track(self.job.name)
