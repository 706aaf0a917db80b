"""Desired state written as git commits: what the API's CreateFlywheel, UpdateFlywheel,
DeleteFlywheel, CreateDataset, CreateEndpoint, DeleteEndpoint and the tag operations change.

Every write takes the repository's desired-state lock (the policy's write-back takes it too),
reads the file as it is now, edits only what the operation names (``adapters.yaml_edit``: the
rest of a person's YAML stays byte for byte), checks that the result loads as the spec it must
be, writes it atomically and commits exactly the paths it touched, with a message naming the
operation. A spec with uncommitted changes is refused rather than committed with them: five
writers at once give five commits, one after another, or a clear conflict, never a lost update.
The reconciler then acts on the commit, as on any other.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.adapters import git, yaml_edit
from reconciler.adapters.comprehend_csv import iter_dataset
from reconciler.adapters.corpus import check_rows_and_overlap
from reconciler.adapters.endpoint_files import load_endpoint, parse_endpoint
from reconciler.adapters.files import atomic_write_text, create_copy, file_lock
from reconciler.adapters.loader import SpecFile, load_specs, parse_spec_text
from reconciler.core.endpoints import EndpointSpec
from reconciler.core.layout import (
    DESIRED_STATE_LOCK,
    SPECS_DIR,
    dataset_file,
    endpoint_file,
)
from reconciler.core.spec import MAX_DATASETS, Dataset, FlywheelSpec
from reconciler.core.specedit import SpecEditError, pin_active_model
from reconciler.errors import (
    ConflictError,
    FlywheelError,
    NotFoundError,
    QuotaError,
    SpecError,
    StateError,
)

#: How long a writer waits for another to finish (a commit takes tens of milliseconds).
LOCK_TIMEOUT = 30.0
TRAILER = "Declared through the Comprehend-compatible API."


@dataclass(frozen=True)
class Declared:
    """What a write committed: the commit (None when nothing changed) and the paths."""

    commit: str | None
    paths: tuple[str, ...]


@contextlib.contextmanager
def desired_state(root: Path) -> Iterator[None]:
    """The repository's desired-state lock, in a git repository (writes are commits)."""
    if not git.is_repo(root):
        raise StateError(f"{root} is not a git repository: desired state is written as git "
                         "commits (run `git init` or `flywheel init` first)")
    with file_lock(root / DESIRED_STATE_LOCK, timeout=LOCK_TIMEOUT, what="the desired state"):
        yield


def find_spec(root: Path, name: str) -> SpecFile:
    """The loaded spec of flywheel ``name``: NotFoundError, or the spec's own error."""
    found, errors = load_specs(root)
    for spec_file in found:
        if spec_file.spec.name == name:
            return spec_file
    for error in errors:
        if error.flywheel == name or (error.file or "").endswith(f"/{name}.yaml"):
            raise error
    raise NotFoundError(f"no flywheel named {name!r} under {SPECS_DIR}/")


def _clean(root: Path, *paths: str) -> None:
    revision = git.revision(root, paths)
    if revision is not None and revision.changed:
        dirty = ", ".join(sorted(revision.changed))
        raise ConflictError(f"{dirty} has uncommitted changes: commit or discard them first "
                            "(the API commits only what it writes)")


def _commit(root: Path, paths: list[str], subject: str) -> Declared:
    commit = git.commit_paths(root, paths, f"{subject}\n\n{TRAILER}\n")
    return Declared(commit, tuple(paths))


# flywheels ------------------------------------------------------------------------------------


def render_spec(spec: FlywheelSpec, header: str) -> str:
    """A new spec file's text: the spec as its camelCase YAML, dataset and settings included."""
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True,
                           exclude_defaults=True)
    data = {"apiVersion": spec.api_version, **data}
    if spec.tags:
        data["tags"] = dict(spec.tags)
    if spec.comprehend is not None:
        data["comprehend"] = spec.comprehend.model_dump(mode="json", by_alias=True,
                                                       exclude_none=True)
    body = yaml.safe_dump(data, default_flow_style=False, sort_keys=False, allow_unicode=True,
                          width=100)
    return f"# {header}\n{body}"


def create_flywheel(root: Path, spec: FlywheelSpec, *, operation: str = "CreateFlywheel"
                    ) -> Declared:
    relative = f"{SPECS_DIR}/{spec.name}.yaml"
    with desired_state(root):
        existing = {f.spec.name for f in load_specs(root)[0]}
        if spec.name in existing or (root / relative).exists():
            raise ConflictError(f"a flywheel named {spec.name!r} exists already")
        text = render_spec(spec, f"Created by {operation}; edit it like any other spec.")
        checked = parse_spec_text(text, relative)
        if checked.spec != spec:
            raise StateError(f"the spec written for {spec.name!r} does not read back as given")
        (root / SPECS_DIR).mkdir(exist_ok=True)
        atomic_write_text(root / relative, text)
        return _commit(root, [relative], f"{operation} {spec.name}")


def _edit_spec(root: Path, name: str, subject: str,
               edit: Callable[[SpecFile, str], str]) -> Declared:
    """Read ``name``'s spec under the lock, apply ``edit`` to its text, check, write, commit."""
    with desired_state(root):
        spec_file = find_spec(root, name)
        _clean(root, spec_file.path)
        path = root / spec_file.path
        text = path.read_text("utf-8")
        try:
            edited = edit(spec_file, text)
        except (yaml_edit.EditError, SpecEditError) as exc:
            raise StateError(f"cannot edit {spec_file.path} safely: {exc}",
                             file=spec_file.path, flywheel=name) from exc
        parse_spec_text(edited, spec_file.path)  # never commit a spec that does not load
        if edited == text:
            return Declared(None, (spec_file.path,))
        atomic_write_text(path, edited)
        return _commit(root, [spec_file.path], subject)


def pin(root: Path, name: str, version: str, *, operation: str = "UpdateFlywheel") -> Declared:
    """``activeModel: <version>`` as a person's pin (a policy's marked line becomes a pin)."""
    def edit(spec_file: SpecFile, text: str) -> str:
        return pin_active_model(text, spec_file.line_of("activeModel")
                                if spec_file.spec.active_model else None, version)

    return _edit_spec(root, name, f"{operation} {name}: pin activeModel to {version}", edit)


def set_field(root: Path, name: str, path: tuple[str | int, ...], value: Any, *,
              subject: str) -> Declared:
    """Set (or, with ``value`` None, remove) one field of ``name``'s spec."""
    return update_field(root, name, lambda _spec_file: path, lambda _spec_file: value,
                        subject=subject)


def update_field(root: Path, name: str, where: Callable[[SpecFile], tuple[str | int, ...]],
                 compute: Callable[[SpecFile], Any], *, subject: str) -> Declared:
    """Set one field of ``name``'s spec to what ``compute`` makes of the spec as it is now
    (under the lock: a read-modify-write two writers cannot interleave); None removes it."""
    def edit(spec_file: SpecFile, text: str) -> str:
        path, value = where(spec_file), compute(spec_file)
        if value is not None:
            return yaml_edit.set_value(text, path, value)
        try:
            return yaml_edit.delete_key(text, path)
        except yaml_edit.EditError:
            if spec_file.line_of(*path) is None:
                return text  # not there: nothing to remove
            raise

    return _edit_spec(root, name, subject, edit)


def delete_flywheel(root: Path, name: str, *, operation: str = "DeleteFlywheel") -> Declared:
    """Remove the spec (its lake records, models and data files stay)."""
    with desired_state(root):
        spec_file = find_spec(root, name)
        _clean(root, spec_file.path)
        (root / spec_file.path).unlink()
        return _commit(root, [spec_file.path], f"{operation} {name}")


# datasets -------------------------------------------------------------------------------------


def add_dataset(root: Path, name: str, dataset: Dataset, source: Path, *,
                operation: str = "CreateDataset", shown: str | None = None
                ) -> tuple[Declared, int]:
    """Copy ``source`` to ``dataset.path``, check it as a reconcile would (every row, no TRAIN
    document in a TEST dataset), declare it in the spec, commit both; the document count.

    Nothing is declared or left behind when a check fails; a problem of the file names it as
    ``shown`` (the caller's name of it, such as the URI it came from)."""
    target = root / dataset.path
    with desired_state(root):
        spec_file = find_spec(root, name)
        _clean(root, spec_file.path, dataset.path)
        spec = spec_file.spec
        if len(spec.datasets) >= MAX_DATASETS:
            raise QuotaError(f"flywheel {name!r} declares {len(spec.datasets)} datasets, the "
                             f"most one spec may (start a new flywheel for more data)")
        if any(d.name == dataset.name for d in spec.datasets):
            raise ConflictError(f"flywheel {name!r} has a dataset named {dataset.name!r} "
                                "already")
        if target.exists() or any(d.path == dataset.path for d in spec.datasets):
            raise ConflictError(f"{dataset.path} exists already")
        text = (root / spec_file.path).read_text("utf-8")
        item = dataset.model_dump(mode="json", by_alias=True, exclude_none=True,
                                  exclude_defaults=True)
        item = {"name": dataset.name, "type": dataset.type.value, **item}
        if dataset.tags:
            item["tags"] = dict(dataset.tags)
        try:
            edited = yaml_edit.append_item(text, ("datasets",), item)
        except yaml_edit.EditError as exc:
            raise StateError(f"cannot edit {spec_file.path} safely: {exc}",
                             file=spec_file.path, flywheel=name) from exc
        declared = parse_spec_text(edited, spec_file.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        create_copy(source, target)
        try:
            documents = sum(1 for _ in iter_dataset(target, dataset.path, spec.task))
            check_rows_and_overlap(declared.spec, root, spec_path=spec_file.path,
                                   lines_of=declared.line_of)
        except (FlywheelError, ValueError, OSError) as exc:
            target.unlink(missing_ok=True)
            _remove_empty(target.parent, root)
            if not isinstance(exc, FlywheelError):
                raise SpecError(str(exc), file=shown or dataset.path) from exc
            for problem in (exc, *exc.others):
                if shown and problem.file == dataset.path:
                    problem.file = shown
            raise
        atomic_write_text(root / spec_file.path, edited)
        subject = (f"{operation} {name}/{dataset.name} ({dataset.type.value}, "
                   f"{documents} documents)")
        return _commit(root, [spec_file.path, dataset.path], subject), documents


def _remove_empty(folder: Path, root: Path) -> None:
    with contextlib.suppress(OSError):
        if folder != root and not any(folder.iterdir()):
            os.rmdir(folder)


def new_dataset_path(flywheel: str, dataset: str) -> str:
    return dataset_file(flywheel, dataset).as_posix()


# endpoints ------------------------------------------------------------------------------------


def render_endpoint(endpoint: EndpointSpec) -> str:
    data = endpoint.model_dump(mode="json", by_alias=True, exclude_none=True)
    if endpoint.tags:
        data["tags"] = dict(endpoint.tags)
    return ("# Created by CreateEndpoint: serves its flywheel's models for ClassifyDocument.\n"
            + yaml.safe_dump(data, default_flow_style=False, sort_keys=False,
                             allow_unicode=True))


def write_endpoint(root: Path, endpoint: EndpointSpec, *, create: bool, subject: str
                   ) -> Declared:
    return _write_endpoint(root, endpoint.name, lambda _current: endpoint, create=create,
                           subject=subject)


def update_endpoint(root: Path, name: str, change: Callable[[EndpointSpec], EndpointSpec], *,
                    subject: str) -> Declared:
    """Rewrite endpoint ``name`` as ``change`` makes it from the file as it is now."""
    def changed(current: EndpointSpec | None) -> EndpointSpec:
        assert current is not None  # read under the lock: an update has one
        return change(current)

    return _write_endpoint(root, name, changed, create=False, subject=subject)


def _write_endpoint(root: Path, name: str,
                    change: Callable[[EndpointSpec | None], EndpointSpec], *, create: bool,
                    subject: str) -> Declared:
    relative = endpoint_file(name).as_posix()
    with desired_state(root):
        exists = (root / relative).exists()
        if create and exists:
            raise ConflictError(f"an endpoint named {name!r} exists already")
        current = None
        if not create:
            current = load_endpoint(root, name)  # NotFoundError, or its own error
            _clean(root, relative)
        endpoint = change(current)
        text = render_endpoint(endpoint)
        if parse_endpoint(text.encode("utf-8"), relative) != endpoint:
            raise StateError(f"the file written for endpoint {name!r} does not read back as "
                             "given")
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(root / relative, text)
        return _commit(root, [relative], subject)


def delete_endpoint(root: Path, name: str, *, operation: str = "DeleteEndpoint") -> Declared:
    relative = endpoint_file(name).as_posix()
    with desired_state(root):
        load_endpoint(root, name)
        _clean(root, relative)
        (root / relative).unlink()
        return _commit(root, [relative], f"{operation} {name}")
