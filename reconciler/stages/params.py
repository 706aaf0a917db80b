"""The generated ``params.yaml`` a stage reads, and the prepared-data files stages share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.adapters import jsonio
from reconciler.adapters.files import atomic_write_bytes
from reconciler.core.documents import Document
from reconciler.core.layout import Workspace
from reconciler.core.spec import FlywheelSpec
from reconciler.errors import DataError


@dataclass(frozen=True)
class StageParams:
    """The generated ``params.yaml`` of one flywheel's pipeline."""

    spec: FlywheelSpec
    active: dict[str, Any] | None
    root: Path
    #: ``{version, datasets: [{name, path, md5}]}``: the active version's TRAIN datasets, the
    #: data the prepare stage measures drift against (None: no active model).
    drift_reference: dict[str, Any] | None = None

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.spec.name)

    def path(self, relative: object) -> Path:
        return self.root / str(relative)


def read_params(params_file: str, root: Path | None = None) -> StageParams:
    root = root or Path.cwd()
    data = yaml.safe_load((root / params_file).read_text("utf-8"))
    spec = FlywheelSpec.model_validate({"name": data["flywheel"], **data["spec"]})
    return StageParams(spec=spec, active=data.get("activeModel"), root=root,
                       drift_reference=data.get("driftReference"))


def write_jsonl(path: Path, documents: list[Document]) -> None:
    """One JSON line per document, written a line at a time (never the whole file in memory)."""
    lines = ((json.dumps({"labels": sorted(d.labels), "text": d.text, "line": d.line},
                         ensure_ascii=False) + "\n").encode("utf-8") for d in documents)
    atomic_write_bytes(path, lines if documents else [b"\n"])


def read_jsonl(path: Path) -> list[Document]:
    try:
        with path.open(encoding="utf-8") as handle:
            return [_document(line) for line in handle if line.strip()]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read prepared data: {exc}", file=str(path)) from exc


def parse_jsonl(data: bytes, *, display: str) -> list[Document]:
    """:func:`read_jsonl` of a prepared-data file's bytes (a cluster task's input)."""
    try:
        return [_document(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    except (ValueError, KeyError) as exc:
        raise DataError(f"cannot read prepared data: {exc}", file=display) from exc


def _document(line: str) -> Document:
    row = jsonio.loads(line, max_depth=2)  # bounded: {"labels": [...], "text": ..., "line": n}
    return Document(frozenset(row["labels"]), row["text"], row["line"])
