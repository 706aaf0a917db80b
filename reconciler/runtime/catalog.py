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
        try:
            head = git.head(self.root)
        except FlywheelError:
            return {}
        with self._lock:
            if self._added is None or self._added[0] != head:
                self._added = (head, git.first_added(self.root, ["specs", "data", "endpoints"]))
            known = self._added[1]
        return {path: known[path] for path in paths if path in known}

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

    def endpoint(self, name: str, active: dict[str, str | None]) -> EndpointView:
        return self._view(load_endpoint(self.root, name), active)

    def endpoints(self, active: dict[str, str | None]) -> list[EndpointView]:
        found, _errors = load_endpoints(self.root)
        return [self._view(endpoint, active) for endpoint in found]

    def _view(self, endpoint: EndpointSpec, active: dict[str, str | None]) -> EndpointView:
        relative = f"endpoints/{endpoint.name}.yaml"
        added = self.declared([relative]).get(relative)
        serving = endpoint.model_version or active.get(endpoint.flywheel)
        try:
            modified = (self.root / relative).stat().st_mtime
        except OSError:
            modified = None
        return EndpointView(endpoint, serving, added, modified)
