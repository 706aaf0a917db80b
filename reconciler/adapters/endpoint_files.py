"""Endpoint files: ``endpoints/<name>.yaml``, read within the spec files' limits and checks.

The file is named after the endpoint; a file whose ``name`` says otherwise is refused, so an
endpoint name always finds its one file (and two endpoints can never share a name).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from reconciler import limits
from reconciler.adapters.files import OutsideFolder, Unresolvable, read_regular, resolve_within
from reconciler.adapters.safe_yaml import parse_yaml
from reconciler.adapters.spec_errors import spec_error
from reconciler.core.endpoints import EndpointSpec
from reconciler.core.layout import ENDPOINTS_DIR, endpoint_file
from reconciler.errors import NotFoundError, SpecError


def endpoint_paths(root: Path) -> list[Path]:
    folder = root / ENDPOINTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if not p.name.startswith("."))


def load_endpoint(root: Path, name: str) -> EndpointSpec:
    """The endpoint ``name``; NotFoundError when it has no file."""
    relative = endpoint_file(name).as_posix()
    path = root / relative
    if not path.is_file():
        raise NotFoundError(f"no endpoint named {name!r} (no {relative})")
    return read_endpoint(path, relative, root)


def read_endpoint(path: Path, relative: str, root: Path | None = None) -> EndpointSpec:
    limit = limits.SPEC_BYTES.value()
    try:
        if root is not None:  # git stores symlinks: an endpoint file must be what it says
            resolve_within(root, ENDPOINTS_DIR, relative)
        raw = read_regular(path, limit + 1)
    except (OutsideFolder, Unresolvable) as exc:
        raise SpecError(f"does not resolve inside {ENDPOINTS_DIR}/ ({exc})",
                        file=relative) from exc
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", file=relative) from exc
    if len(raw) > limit:
        raise SpecError(f"file is over the limit of {limit} bytes", file=relative)
    return parse_endpoint(raw, relative)


def parse_endpoint(raw: bytes, relative: str) -> EndpointSpec:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError("not valid UTF-8", file=relative) from exc
    data, lines = parse_yaml(text, relative)
    if not isinstance(data, dict):
        raise SpecError("an endpoint file must be a YAML mapping", file=relative, line=1)
    try:
        endpoint = EndpointSpec.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise spec_error(exc, relative, lines) from exc
    if Path(relative).stem != endpoint.name:
        raise SpecError(f"the file of endpoint {endpoint.name!r} must be "
                        f"{endpoint_file(endpoint.name)}", file=relative,
                        line=lines.get(("name",)), field="name")
    return endpoint


def load_endpoints(root: Path) -> tuple[list[EndpointSpec], list[SpecError]]:
    """Every endpoint; a bad file is reported and skipped, the others still load."""
    found: list[EndpointSpec] = []
    errors: list[SpecError] = []
    for path in endpoint_paths(root):
        try:
            found.append(read_endpoint(path, path.relative_to(root).as_posix(), root))
        except SpecError as exc:
            errors.append(exc)
    return found, errors
