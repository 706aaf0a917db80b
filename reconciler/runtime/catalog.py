"""The read side of datasets and endpoints: what each one is, from the files that declare it,
the lake, and git (which commit declared it, when).

Dataset document counts are cached by file identity (path, size, modification time), so a
listing reads each file once until it changes; git's answer is cached by HEAD.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters import git
from reconciler.adapters.comprehend_csv import iter_dataset
from reconciler.adapters.dataset_files import resolve_inside
from reconciler.adapters.endpoint_files import load_endpoint, load_endpoints
from reconciler.core.endpoints import EndpointSpec
from reconciler.core.layout import endpoint_file
from reconciler.core.spec import Dataset, FlywheelSpec
from reconciler.errors import FlywheelError


@dataclass(frozen=True)
class DatasetView:
    flywheel: str
    dataset: Dataset
    documents: int | None
    #: Why the file does not read (then the dataset is FAILED), or None.
    problem: str | None
    declared: git.Added | None


@dataclass(frozen=True)
class EndpointView:
    endpoint: EndpointSpec
    #: The version the endpoint serves now: its fixed version, or the flywheel's active one.
    serving: str | None
    #: Whether its flywheel is declared (an endpoint of a deleted flywheel serves nothing).
    flywheel_declared: bool
    declared: git.Added | None
    last_modified: float | None


class Catalog:
    """Caches for the listings of one repository (held by the API's handle)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._counts: dict[tuple[str, int, int], tuple[int | None, str | None]] = {}
        self._added: tuple[str, dict[str, git.Added]] | None = None
        self._lock = threading.Lock()

    def declared(self, paths: list[str]) -> dict[str, git.Added]:
        """First-add commits of ``paths`` (and of everything under specs/ data/ endpoints/)."""
        moved = self._head_moved()
        with self._lock:
            cached = self._added
        if cached is None or cached[0] != moved:
            known = git.first_added(self.root, ["specs", "data", "endpoints"])
            with self._lock:
                self._added = (moved, known)
        else:
            known = cached[1]
        return {path: known[path] for path in paths if path in known}

    def _head_moved(self) -> str:
        """A key that changes whenever HEAD moves: git appends to ``.git/logs/HEAD`` on every
        commit, checkout, reset or pull, so its size and time say it without running git (a
        repository without that log asks git for HEAD)."""
        try:
            info = (self.root / ".git" / "logs" / "HEAD").stat()
            return f"{info.st_size}:{info.st_mtime_ns}"
        except OSError:
            try:
                return git.head(self.root)
            except FlywheelError:
                return ""

    def count(self, spec: FlywheelSpec, dataset: Dataset) -> tuple[int | None, str | None]:
        """The dataset's document count, or the one-line reason it cannot be read."""
        try:
            path = resolve_inside(self.root, dataset.path)
            info = path.stat()
        except (FlywheelError, OSError) as exc:
            return None, str(exc) if isinstance(exc, FlywheelError) else (
                f"{dataset.path}: cannot read: {exc.strerror}")
        key = (dataset.path, info.st_size, info.st_mtime_ns)
        with self._lock:
            if key in self._counts:
                return self._counts[key]
        try:
            found: tuple[int | None, str | None] = (
                sum(1 for _ in iter_dataset(path, dataset.path, spec.task)), None)
        except FlywheelError as exc:
            found = (None, str(exc))
        except (OSError, ValueError) as exc:
            found = (None, f"{dataset.path}: {exc}")
        with self._lock:
            self._counts[key] = found
        return found

    def datasets(self, spec: FlywheelSpec) -> list[DatasetView]:
        added = self.declared([d.path for d in spec.datasets])
        views = []
        for dataset in spec.datasets:
            documents, problem = self.count(spec, dataset)
            views.append(DatasetView(spec.name, dataset, documents, problem,
                                     added.get(dataset.path)))
        return views

    def endpoint(self, name: str) -> EndpointSpec:
        """Endpoint ``name`` as declared (NotFoundError without its file)."""
        return load_endpoint(self.root, name)

    def endpoints(self, active: dict[str, str | None]) -> list[EndpointView]:
        found, _errors = load_endpoints(self.root)
        return [self.view_of(endpoint, active) for endpoint in found]

    def view_of(self, endpoint: EndpointSpec, active: dict[str, str | None]) -> EndpointView:
        """``endpoint`` with what it serves; ``active`` maps declared flywheels to their
        active version (a flywheel missing from it is not declared)."""
        relative = endpoint_file(endpoint.name).as_posix()
        added = self.declared([relative]).get(relative)
        serving = endpoint.model_version or active.get(endpoint.flywheel)
        try:
            modified = (self.root / relative).stat().st_mtime
        except OSError:
            modified = None
        return EndpointView(endpoint, serving if endpoint.flywheel in active else None,
                            endpoint.flywheel in active, added, modified)
