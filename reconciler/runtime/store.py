"""The store port: what the runtime reads from and writes to a flywheel's records.

:class:`reconciler.adapters.lake.Lake` (files under ``lake/<name>/``) implements it
structurally; :class:`reconciler.testing.InMemoryLake` is the in-memory twin, and
``tests/unit/test_store_contract.py`` runs one contract suite against both.

The rules every implementation keeps (the contract): a finished iteration record (its status
terminal) and a version record refuse to be rewritten (:class:`~reconciler.errors.StateError`);
a model file is never archived over another; a name that is not a flywheel name is refused;
``observe`` returns copies, so a caller mutating a record changes nothing until it writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from reconciler.core.state import FlywheelStatus, IterationRecord, ModelVersionRecord, Observed

#: A flywheel's iteration records, as ``Observed.iterations`` holds them (or a list).
Iterations = tuple[IterationRecord, ...] | list[IterationRecord]


class LakeStore(Protocol):
    root: Path

    # reading
    def observe(self, name: str) -> Observed: ...

    def evaluation(self, name: str, iteration_id: str,
                   which: str) -> dict[str, Any] | None: ...

    def history_stale(self, name: str, iterations: Iterations) -> bool: ...

    # writing
    def write_status(self, status: FlywheelStatus) -> None: ...

    def write_iteration(self, record: IterationRecord) -> None: ...

    def write_version(self, name: str, record: ModelVersionRecord) -> None: ...

    def write_evaluation(self, name: str, iteration_id: str, which: str,
                         record: dict[str, Any]) -> None: ...

    def write_history(self, name: str, iterations: Iterations) -> None: ...

    def remove_stale_temp_files(self, name: str) -> list[Path]: ...

    # the models folder
    def model_files(self, name: str) -> Mapping[str, Path]: ...

    def tracked_models(self, name: str) -> set[str]: ...

    def archive_model(self, name: str, version: str, source: Path) -> Path: ...

    def check_models(self, name: str, versions: dict[str, ModelVersionRecord],
                     archiving: tuple[str, str] | None = None) -> None: ...

    def remove_orphans(self, name: str, observed: Observed) -> list[str]: ...

    # locking
    def try_flywheel_lock(self, name: str) -> AbstractContextManager[bool]: ...
