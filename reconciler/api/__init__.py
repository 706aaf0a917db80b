"""The public API: every use case the faces call (the CLI, the HTTP API and its console).

Each function takes a :class:`Repository`, the handle of one flywheel repository that owns its
root, its lake, its dataset-hash cache and a cache of loaded models, and guards them with one
lock so that a threaded server may share a handle. Results are records and views
(:mod:`reconciler.core.state`, :mod:`reconciler.runtime.queries`); the JSON shapes of them are
built purely in :mod:`reconciler.core.responses`, the text and tables by each face.

Errors are the tree of :mod:`reconciler.errors`: a name that is not there is a
:class:`~reconciler.errors.NotFoundError`, anything else a user can cause a one-line
:class:`~reconciler.errors.FlywheelError`.

Writes of desired state go through git: the policy's write-back, and every use case of
:mod:`reconciler.api.declaring` (create, pin or delete a flywheel, declare a dataset, endpoints,
tags), each one commit; asking for an iteration is a request token. Observed state is written
only by :func:`reconcile`.

Threads: every read use case may be called from several threads on one handle. :func:`reconcile`
runs iterations in the calling process, and DVC redirects the process's output and ``PATH``
while a stage runs, so a threaded server never calls it: it records intent
(:func:`request_iteration`) and the watch daemon, or a child ``flywheel reconcile``, acts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.api.repository import Repository, open_repository
from reconciler.errors import FlywheelError, NotFoundError
from reconciler.gitops.publish import DEFAULT_MESSAGE
from reconciler.runtime.stopping import NEVER, StopRequest

if TYPE_CHECKING:
    from reconciler.core.state import IterationRecord
    from reconciler.gitops.publish import Published
    from reconciler.gitops.scaffold import Initialised
    from reconciler.runtime.classify import Classification
    from reconciler.runtime.events import Reporter
    from reconciler.runtime.executor import IterationExecutor, executor_from
    from reconciler.runtime.queries import LATEST, FlywheelView
    from reconciler.runtime.reconcile import ReconcileResult
    from reconciler.runtime.suggest import Suggestions
    from reconciler.runtime.writeback import GitOps

#: Names this package gives from the modules that hold them, imported on first use: a face that
#: needs one use case (a one-text ``flywheel classify``) does not import every other's modules.
_LAZY = {"LATEST": "reconciler.runtime.queries", "FlywheelView": "reconciler.runtime.queries",
         "Suggestions": "reconciler.runtime.suggest",
         "executor_from": "reconciler.runtime.executor"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LATEST",
    "FlywheelView",
    "IterationDetail",
    "PublishState",
    "Repository",
    "Suggestions",
    "Validation",
    "classify",
    "describe_flywheel",
    "describe_iteration",
    "executor_from",
    "init",
    "install_hooks",
    "list_flywheels",
    "list_iterations",
    "open_repository",
    "plan",
    "plot",
    "publish",
    "publish_state",
    "reconcile",
    "request_handled",
    "request_iteration",
    "suggest",
    "uncommitted",
    "validate",
    "write_report",
]


# reconciling ---------------------------------------------------------------------------------


def reconcile(repo: Repository, names: set[str] | None = None, *,
              report: Reporter | None = None, stop: StopRequest = NEVER,
              gitops: GitOps | None = None,
              executor: IterationExecutor | None = None) -> ReconcileResult:
    """Bring every flywheel (or those in ``names``) to its spec's desired state: iterate
    through DVC, promote, write back (see :mod:`reconciler.runtime.reconcile`). ``executor``
    runs the iterations' computations: in this process by default, or on a cluster
    (:func:`reconciler.runtime.executor.executor_from`). ``report`` hears the events."""
    from reconciler.runtime.events import ignore
    from reconciler.runtime.reconcile import reconcile as run

    with repo.locked():
        return run(repo.root, report=report or ignore, only=names or None, clock=repo.clock,
                   stop=stop,
                   gitops=gitops, lake=repo.lake, cache=repo.cache, executor=executor)


def plan(repo: Repository, names: set[str] | None = None) -> list[FlywheelView]:
    """What a reconcile would do and why, per flywheel; the datasets of a flywheel with an
    iteration due are read and checked too. Unknown names are a NotFoundError."""
    views = repo.views(names or None, check_data=True)
    unknown = (names or set()) - {v.name for v in views}
    if unknown:
        raise NotFoundError(f"no flywheel named {', '.join(sorted(unknown))} under specs/")
    return views


@dataclass(frozen=True)
class Validation:
    views: list[FlywheelView]

    @property
    def problems(self) -> list[FlywheelView]:
        return [v for v in self.views if v.error]

    @property
    def lines(self) -> list[str]:
        """One line per problem: a file with four mistakes lists all four (bounded)."""
        return [line for v in self.problems if v.error for line in v.error.lines()]

    @property
    def valid(self) -> bool:
        return not self.problems


def validate(repo: Repository) -> Validation:
    """Every spec and every dataset row checked; nothing written."""
    return Validation(repo.views(check_data="all"))


# inspecting ----------------------------------------------------------------------------------


def list_flywheels(repo: Repository, names: set[str] | None = None, *,
                   choose: Callable[[list[str]], Collection[str]] | None = None
                   ) -> list[FlywheelView]:
    """Every flywheel (and every spec file that does not load), sorted by name; with ``names``,
    only those; with ``choose``, those it picks from every listed name, sorted (a face showing
    one page of them: the lake is read for that page alone, the specs once)."""
    return repo.views(names, choose=choose)


def describe_flywheel(repo: Repository, name: str) -> FlywheelView:
    """One flywheel; a spec that does not load, or records that cannot be read, is its error."""
    found = repo.view(name, records=True)
    if found.spec_file is None:
        assert found.error is not None
        raise found.error
    return found


def list_iterations(repo: Repository, name: str) -> list[IterationRecord]:
    """A flywheel's iterations, oldest first."""
    return list(repo.view(name, records=True).observed.iterations)


@dataclass(frozen=True)
class IterationDetail:
    view: FlywheelView
    record: IterationRecord
    #: The full evaluations of the trained and the active model (per label, confusion), if kept.
    trained: dict[str, Any] | None
    active: dict[str, Any] | None


def describe_iteration(repo: Repository, name: str, iteration_id: str) -> IterationDetail:
    """One iteration by id (or :data:`LATEST`), with its full evaluations."""
    from reconciler.runtime.queries import iteration

    found = repo.view(name, records=True)
    record = iteration(found, iteration_id)
    with repo.locked():
        trained = repo.records.evaluation(found.name, record.flywheel_iteration_id, "trained")
        active = repo.records.evaluation(found.name, record.flywheel_iteration_id, "active")
    return IterationDetail(found, record, trained, active)


# asking and using ----------------------------------------------------------------------------


def request_iteration(repo: Repository, name: str) -> str:
    """Record a request for an iteration of ``name`` now (even without new data or inside a
    back-off); returns its token. The next reconcile, or a running daemon, answers it."""
    from reconciler.adapters.requests import new_request

    found = repo.view(name)
    return new_request(repo.root, found.name)


def request_handled(repo: Repository, name: str, token: str) -> bool:
    """Whether the flywheel's status acknowledges the request ``token``."""
    with repo.locked():
        status = repo.records.observe(name).status
    return status is not None and status.last_handled_iteration_request == token


def classify(repo: Repository, name: str, texts: list[str], version: str | None = None, *,
             raw: bool = False) -> tuple[str, list[Classification]]:
    """Classify ``texts`` with ``version`` (default: the active model); returns the version
    used. Loaded models are kept by the handle, keyed by their sha256."""
    from reconciler.runtime.classify import classify as run

    if not texts:
        raise FlywheelError("give some text to classify (arguments or --file)")
    with repo.locked():
        return run(repo.root, name, texts, version, raw=raw, lake=repo.records,
                   models=repo.models)


def suggest(repo: Repository, name: str, pool: Path, count: int, strategy: str, *,
            version: str | None = None, text_column: str | None = None, seed: int = 0,
            progress: Callable[[int], None] | None = None) -> Suggestions:
    """The ``count`` documents of ``pool`` (a text file, one document a line, or a CSV with a
    ``text`` column or ``text_column``) most worth labelling next, by ``strategy`` (margin,
    entropy, diverse or random; see :mod:`reconciler.core.suggest`), with the active model (or
    ``version``). The pool is streamed: memory is bounded by ``count``, not the pool.
    ``progress`` is called with the documents read so far after each batch."""
    from reconciler.runtime.suggest import suggest as run

    with repo.locked():
        return run(repo.root, name, pool, count, strategy, version=version,
                   text_column=text_column, seed=seed, lake=repo.records, models=repo.models,
                   progress=progress)


def plot(repo: Repository, name: str, target: Path | None = None) -> Path:
    """Chart F1 across iterations and per-label F1 into ``target`` (default: the repository's
    git-ignored charts folder); returns the file written."""
    from reconciler.reports.chart import write_chart

    found = repo.view(name, records=True)
    from reconciler.core.layout import chart_file

    target = target or repo.root / chart_file(found.name)
    write_chart(repo.root, found, target)
    return target


def write_report(repo: Repository, result: ReconcileResult, target: Path, *,
                 charts_url: str | None = None) -> Path:
    """The Markdown report of one reconcile (a pull-request comment) into ``target``, with PNG
    charts in a ``charts/`` folder next to it."""
    from reconciler.reports.markdown import markdown_report

    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    markdown = markdown_report(repo.root, result, charts_dir=target.parent / "charts",
                               charts_url=charts_url)
    target.write_text(markdown, "utf-8")
    return target


# git and CI ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishState:
    """Whether a reconcile left ``lake/`` or ``pipelines/`` uncommitted, and whether a DVC
    remote is set for the models."""

    uncommitted: bool
    has_remote: bool


def publish_state(repo: Repository) -> PublishState | None:
    """None outside a git repository."""
    from reconciler.adapters import dvc, git
    from reconciler.core.layout import LAKE_DIR, PIPELINES_DIR

    revision = git.revision(repo.root, (LAKE_DIR, PIPELINES_DIR))
    if revision is None:
        return None
    return PublishState(bool(revision.changed), dvc.default_remote(repo.root) is not None)


def uncommitted(repo: Repository) -> frozenset[str] | None:
    """The files under ``specs/`` and ``data/`` that differ from git's HEAD (modified, staged or
    untracked): what the reconciler runs on but git does not hold. None outside git."""
    from reconciler.adapters import git

    revision = git.revision(repo.root)
    return None if revision is None else revision.changed


def publish(repo: Repository, *, dvc_push: bool = True, dvc_remote: str | None = None,
            push: bool = False, remote: str = "origin", message: str = DEFAULT_MESSAGE,
            skip_ci: str | None = None) -> Published:
    """The CI step after a reconcile: ``dvc push`` the models, commit the lake records and the
    pipeline locks, and (with ``push``) ``git push``."""
    from reconciler.adapters.git import SKIP_CI_MARKER
    from reconciler.gitops.publish import publish as run

    with repo.locked():
        return run(repo.root, dvc_push=dvc_push, dvc_remote=dvc_remote, push=push,
                   remote=remote, message=message,
                   skip_ci=SKIP_CI_MARKER if skip_ci is None else skip_ci)


def install_hooks(repo: Repository) -> list[Path]:
    """Git hooks (post-commit, post-merge) that reconcile in the background; the files."""
    from reconciler.gitops.hooks import install_hooks as run

    return run(repo.root)


def init(path: Path | str, remote: str | None = None) -> Initialised:
    """Make a folder a flywheel repository (git, DVC, the layout) and commit what it created;
    ``remote`` sets the default DVC remote for the models."""
    from reconciler.gitops.scaffold import init_repository

    return init_repository(Path(path).resolve(), remote)
