"""``flywheel init``: turn a folder into a flywheel repository."""

from __future__ import annotations

from pathlib import Path

from reconciler.adapters import dvc, git
from reconciler.adapters.files import write_if_changed
from reconciler.adapters.pipeline import ensure_root_dvc_yaml

GITIGNORE_LINES = (".flywheel/",)


def init_repository(path: Path) -> None:
    """git init + dvc init + ``specs/``, ``data/``, root ``dvc.yaml``; safe to run again."""
    path.mkdir(parents=True, exist_ok=True)
    git.init(path)
    dvc.init(path)
    for folder in ("specs", "data"):
        (path / folder).mkdir(exist_ok=True)
    ensure_root_dvc_yaml(path)
    ignore = path / ".gitignore"
    lines = ignore.read_text("utf-8").splitlines() if ignore.exists() else []
    missing = [line for line in GITIGNORE_LINES if line not in lines]
    if missing:
        write_if_changed(ignore, "\n".join([*lines, *missing]) + "\n")
