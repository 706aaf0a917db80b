"""The handle every use case takes: one flywheel repository, its caches and its lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reconciler.adapters.lake import Lake
from reconciler.adapters.remembering_lake import RememberingLake
from reconciler.core.layout import SPECS_DIR
from reconciler.errors import NotFoundError
from reconciler.runtime.classify import ModelCache

if TYPE_CHECKING:
    from reconciler.adapters.dataset_files import HashCache
    from reconciler.runtime.catalog import Catalog
    from reconciler.runtime.queries import FlywheelView


class Repository:
    """One flywheel repository: the root, the lake, the caches, and the lock that guards them.

    Made by :func:`open_repository`, which refuses a folder without ``specs/``. The hash cache
    and the model cache live as long as the handle; every use case takes the lock while it reads
    or writes them, so one handle may serve several threads. ``lake`` is the engine's (a
    reconcile reads and writes through it); ``records`` is the read side's, which keeps each
    flywheel's records until a file of theirs changes and hands them out shared: read only.
    """

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = root.resolve()
        self.clock = clock
        self.lake = Lake(self.root)
        self.records = RememberingLake(self.root)
        self.models = ModelCache()
        self._lock = threading.RLock()
        self._cache: HashCache | None = None
        self._catalog: Catalog | None = None

    # Made on first use: their modules read specs and datasets (pydantic's spec models, a
    # quarter of a second to import), which a use case reading only records never needs.
    @property
    def cache(self) -> HashCache:
        """The dataset-hash cache."""
        with self._lock:
            if self._cache is None:
                from reconciler.adapters.dataset_files import HashCache

                self._cache = HashCache(self.root)
            return self._cache

    @property
    def catalog(self) -> Catalog:
        """The declared datasets and endpoints."""
        with self._lock:
            if self._catalog is None:
                from reconciler.runtime.catalog import Catalog

                self._catalog = Catalog(self.root)
            return self._catalog

    @contextmanager
    def locked(self) -> Iterator[Repository]:
        """The handle, exclusively: its caches are not shared by two use cases at once."""
        with self._lock:
            yield self

    def views(self, names: set[str] | None = None, *,
              check_data: bool | Literal["all"] = False,
              choose: Callable[[list[str]], Collection[str]] | None = None
              ) -> list[FlywheelView]:
        """The views of ``names`` (None: all); or, with ``choose``, of the names it picks from
        every listed name (sorted), with the specs read once for both."""
        from reconciler.adapters.loader import load_specs
        from reconciler.runtime.queries import all_views, listed_name

        with self._lock:
            loaded = None
            if choose is not None:
                loaded = load_specs(self.root)
                listed = sorted([s.spec.name for s in loaded[0]]
                                + [listed_name(e) for e in loaded[1]])
                names = set(choose(listed))
            return all_views(self.root, names, check_data=check_data, lake=self.records,
                             cache=self.cache, clock=self.clock, loaded=loaded)

    def view(self, name: str, *, records: bool = False) -> FlywheelView:
        from reconciler.runtime.queries import view

        with self._lock:
            return view(self.root, name, records=records, lake=self.records, cache=self.cache)

    def __repr__(self) -> str:
        return f"Repository({str(self.root)!r})"


def open_repository(path: Path | str = ".", *,
                    clock: Callable[[], float] = time.time) -> Repository:
    """The handle of the flywheel repository at ``path``; one without ``specs/`` is refused."""
    root = Path(path).resolve()
    if not (root / SPECS_DIR).is_dir():
        raise NotFoundError(f"{root} has no {SPECS_DIR}/ folder (run `flywheel init` to "
                            "create one)")
    return Repository(root, clock=clock)


