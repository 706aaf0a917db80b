"""Use cases that change desired state (the HTTP API's writes and its console's): each one is
a git commit in the repository (:mod:`reconciler.gitops.declare`), and the reconciler acts on
it as on any other commit. None of them runs an iteration.

Also here: asking for an iteration (``start_iteration``), which is a request, not declared
state, and is refused when it could not run one (Comprehend's rules: one iteration at a time,
and only with data it has not iterated on).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from reconciler.adapters.loader import SpecFile
from reconciler.adapters.sources import SourcePolicy
from reconciler.api.repository import Repository
from reconciler.core.arns import Arn
from reconciler.core.endpoints import EndpointSpec
from reconciler.core.layout import INCOMING_DIR
from reconciler.core.planner import NO_TRAIN_DATA
from reconciler.core.spec import ComprehendSettings, Dataset, FlywheelSpec, Trigger
from reconciler.core.state import IterationStatus, Observed
from reconciler.errors import ConflictError, FlywheelError, NotFoundError
from reconciler.gitops import declare
from reconciler.gitops.declare import Declared
from reconciler.runtime.catalog import DatasetView, EndpointView

__all__ = [
    "DatasetView",
    "Declared",
    "EndpointView",
    "SourcePolicy",
    "change_settings",
    "change_tags",
    "create_dataset",
    "create_endpoint",
    "create_flywheel",
    "delete_endpoint",
    "delete_flywheel",
    "pin_active_model",
    "requested_iteration",
    "start_iteration",
    "tags_of",
    "update_endpoint",
    "upload_dataset",
]


def create_flywheel(repo: Repository, spec: FlywheelSpec) -> Declared:
    """``specs/<name>.yaml`` for a new flywheel (ConflictError when the name is taken)."""
    return declare.create_flywheel(repo.root, spec)


def pin_active_model(repo: Repository, name: str, version: str) -> Declared:
    """Pin ``activeModel`` to ``version``, which must be a completed version of the flywheel:
    a person's decision, which no policy overrides."""
    observed = repo.view(name, records=True).observed
    if version not in observed.versions:
        known = ", ".join(sorted(observed.versions)) or "none yet"
        raise NotFoundError(f"flywheel {name!r} has no model version {version} (versions: "
                            f"{known})")
    return declare.pin(repo.root, name, version)


def change_settings(repo: Repository, name: str,
                    change: Callable[[ComprehendSettings], ComprehendSettings]) -> Declared:
    """The ``comprehend:`` block (role, data lake, security) as ``change`` makes it of the
    block as it is now (read and written under the desired-state lock: two updates of
    different settings at once both stay)."""
    def compute(spec_file: SpecFile) -> dict[str, object] | None:
        current = spec_file.spec.comprehend or ComprehendSettings()
        updated = change(current).model_dump(mode="json", by_alias=True, exclude_none=True)
        return updated or None

    return declare.update_field(repo.root, name, lambda _f: ("comprehend",), compute,
                                subject=f"UpdateFlywheel {name}: settings")


def delete_flywheel(repo: Repository, name: str) -> Declared:
    """Remove the spec; refused while an iteration runs or is asked for, or while endpoints
    serve its models (the lake's records and models stay, as Comprehend's data lake does)."""
    found = repo.view(name, records=True)
    if found.observed.unfinished or _pending_request(repo, name, found.observed):
        raise ConflictError(f"flywheel {name!r} is running an iteration: delete it once the "
                            "iteration has finished")
    attached = [e.endpoint.name for e in repo.catalog.endpoints({})
                if e.endpoint.flywheel == name]
    if attached:
        raise ConflictError(f"flywheel {name!r} serves endpoint(s) {', '.join(attached)}: "
                            "delete them first")
    return declare.delete_flywheel(repo.root, name)


def _pending_request(repo: Repository, name: str,
                     observed: Observed | None = None) -> str | None:
    from reconciler.adapters.requests import read_request

    token = read_request(repo.root, name)
    if token is None:
        return None
    if observed is None:
        with repo.locked():
            observed = repo.records.observe(name)
    status = observed.status
    handled = status.last_handled_iteration_request if status else None
    return token if token != handled else None


def requested_iteration(repo: Repository, name: str,
                        observed: Observed | None = None) -> str | None:
    """The id of the iteration asked for and not started yet, if any (``observed``: the
    flywheel's records, when the caller has read them already)."""
    from reconciler.adapters.requests import requested_id

    return requested_id(_pending_request(repo, name, observed))


def start_iteration(repo: Repository, name: str) -> str:
    """Ask for an iteration of ``name`` now; returns the id it will have.

    When a flywheel that iterates on new data (``trigger: newData``) has started one on exactly
    the current data on its own, that one's id. Refused (ConflictError) while another one runs
    or one is asked for already; refused (FlywheelError) when there is nothing to iterate on: no
    TRAIN dataset, a dataset that does not read, or no data, recipe or task change since an
    iteration completed on it (create a dataset first, as Comprehend asks)."""
    from reconciler.adapters.requests import new_request
    from reconciler.core.planner import input_digest
    from reconciler.runtime.iteration import new_iteration_id
    from reconciler.runtime.reconcile import read_inputs

    checked = repo.views({name}, check_data="all")
    found = next((v for v in checked if v.name == name), None)
    if found is None:
        raise NotFoundError(f"no flywheel named {name!r} under specs/")
    if found.error is not None:
        raise found.error
    assert found.spec_file is not None
    spec = found.spec_file.spec
    if spec.suspend:
        raise FlywheelError(f"flywheel {name!r} is suspended (suspend: true in its spec)")
    if not spec.train_datasets:
        raise FlywheelError(NO_TRAIN_DATA)
    with repo.locked():
        inputs = read_inputs(repo.root, repo.records, repo.cache, found.spec_file)
    observed = inputs.observed
    digest = input_digest(spec, inputs.md5s)
    running = [it for it in observed.iterations if not it.status.terminal]
    if running:
        latest = running[-1]
        if latest.input_digest == digest and spec.trigger is Trigger.NEW_DATA:
            return latest.flywheel_iteration_id  # started on its own for this very data
        raise ConflictError(f"iteration {latest.flywheel_iteration_id} of flywheel {name!r} "
                            f"is {latest.status.value}: one iteration at a time")
    if _pending_request(repo, name, observed):
        raise ConflictError(f"an iteration of flywheel {name!r} was asked for already and has "
                            "not started yet")
    done = [it for it in observed.iterations
            if it.input_digest == digest and it.status is IterationStatus.COMPLETED]
    if done:
        raise FlywheelError(f"no new data since iteration {done[-1].flywheel_iteration_id}: "
                            "create a TRAIN or TEST dataset first (CreateDataset)")
    iteration_id = new_iteration_id(repo.clock(), observed)
    new_request(repo.root, name, iteration_id)
    return iteration_id


# datasets and endpoints -------------------------------------------------------------------------


def create_dataset(repo: Repository, name: str, dataset: Dataset, uri: str,
                   sources: SourcePolicy) -> tuple[Declared, int]:
    """Declare ``dataset`` in ``name``'s spec with the content of ``uri`` (an ``s3://`` object
    or a local file ``sources`` allows), checked as a reconcile checks it first; the commit and
    the document count. A problem of the file names it by ``uri``."""
    from reconciler.adapters.sources import fetch_to

    return _declare_fetched(repo, name, dataset, lambda temp: fetch_to(uri, sources, temp),
                            shown=uri)


def upload_dataset(repo: Repository, name: str, dataset: Dataset, content: BinaryIO,
                   shown: str) -> tuple[Declared, int]:
    """:func:`create_dataset` for a file a person uploaded (the console's Create dataset):
    ``content`` is read to its end, and a problem of the file names it as ``shown``."""
    def fill(temp: Path) -> None:
        with temp.open("wb") as out:
            shutil.copyfileobj(content, out, 1024 * 1024)

    return _declare_fetched(repo, name, dataset, fill, shown=shown)


def _declare_fetched(repo: Repository, name: str, dataset: Dataset,
                     fill: Callable[[Path], object], *, shown: str) -> tuple[Declared, int]:
    """``fill`` writes the new file into a scratch file inside the repository (so the copy
    into ``data/`` is a rename on the same disk), then it is checked and declared."""
    incoming = repo.root / INCOMING_DIR
    incoming.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=incoming, suffix=".csv")
    os.close(handle)
    try:
        fill(Path(temp))
        return declare.add_dataset(repo.root, name, dataset, Path(temp), shown=shown)
    finally:
        with contextlib.suppress(OSError):
            Path(temp).unlink()


def dataset_path(flywheel: str, dataset: str) -> str:
    """Where :func:`create_dataset` puts a dataset's file."""
    return declare.new_dataset_path(flywheel, dataset)


def create_endpoint(repo: Repository, endpoint: EndpointSpec) -> Declared:
    repo.view(endpoint.flywheel)  # NotFoundError for an unknown flywheel
    if endpoint.model_version is not None:
        pin_check = repo.view(endpoint.flywheel, records=True).observed.versions
        if endpoint.model_version not in pin_check:
            raise NotFoundError(f"flywheel {endpoint.flywheel!r} has no model version "
                                f"{endpoint.model_version}")
    return declare.write_endpoint(repo.root, endpoint, create=True,
                                  subject=f"CreateEndpoint {endpoint.name}")


def update_endpoint(repo: Repository, name: str,
                    change: Callable[[EndpointSpec], EndpointSpec]) -> Declared:
    return declare.update_endpoint(repo.root, name, change, subject=f"UpdateEndpoint {name}")


def delete_endpoint(repo: Repository, name: str) -> Declared:
    return declare.delete_endpoint(repo.root, name)


# tags ------------------------------------------------------------------------------------------


def tags_of(repo: Repository, target: Arn) -> dict[str, str]:
    """The tags declared on a flywheel, one of its datasets, or an endpoint."""
    if target.kind == "endpoint":
        return dict(repo.catalog.endpoint(target.name).tags)
    spec = _spec(repo, target.name)
    if target.kind == "flywheel":
        return dict(spec.tags)
    if target.kind == "dataset":
        return dict(_dataset(spec, target)[1].tags)
    raise FlywheelError(f"model versions carry no tags here: tag the flywheel {target.name!r}")


def change_tags(repo: Repository, target: Arn, change: Callable[[dict[str, str]], dict[str, str]],
                operation: str) -> Declared:
    """Declare on ``target`` the tags ``change`` makes of its tags as they are now (read and
    written under the desired-state lock, so concurrent tag changes never lose one)."""
    subject = f"{operation} {target.name}" + (f"/{target.child}" if target.child else "")
    if target.kind == "endpoint":
        return declare.update_endpoint(
            repo.root, target.name,
            lambda current: current.model_copy(update={"tags": change(dict(current.tags))}),
            subject=subject)
    if target.kind == "flywheel":
        return declare.update_field(repo.root, target.name, lambda _f: ("tags",),
                                    lambda f: change(dict(f.spec.tags)) or None,
                                    subject=subject)
    if target.kind != "dataset":
        raise FlywheelError(f"model versions carry no tags here: tag the flywheel "
                            f"{target.name!r}")
    return declare.update_field(
        repo.root, target.name, lambda f: ("datasets", _dataset(f.spec, target)[0], "tags"),
        lambda f: change(dict(_dataset(f.spec, target)[1].tags)) or None, subject=subject)


def _spec(repo: Repository, name: str) -> FlywheelSpec:
    found = repo.view(name)
    if found.spec_file is None:
        assert found.error is not None
        raise found.error
    return found.spec_file.spec


def _dataset(spec: FlywheelSpec, target: Arn) -> tuple[int, Dataset]:
    for index, dataset in enumerate(spec.datasets):
        if dataset.name == target.child:
            return index, dataset
    raise NotFoundError(f"flywheel {spec.name!r} has no dataset named {target.child!r}")
