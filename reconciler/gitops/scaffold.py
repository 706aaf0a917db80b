"""``flywheel init``: turn a folder into a flywheel repository, committed."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters import dvc, git
from reconciler.adapters.files import write_if_changed
from reconciler.adapters.pipeline import ensure_root_dvc_yaml
from reconciler.core.layout import DATA_DIR, SPECS_DIR, STATE_DIR

#: ``.flywheel/`` is local state (hash cache, locks, logs); ``dvc_plots/`` is what
#: ``dvc plots show`` renders.
GITIGNORE_LINES = (f"{STATE_DIR}/", "dvc_plots/")
#: The files ``flywheel init`` creates (when missing) and commits; empty folders need a file.
KEEP_FILES = (f"{SPECS_DIR}/.gitkeep", f"{DATA_DIR}/.gitkeep")
COMMITTED = (".gitignore", ".dvcignore", ".dvc/config", ".dvc/.gitignore", "dvc.yaml",
             *KEEP_FILES)
INIT_MESSAGE = "flywheel init: git + DVC repository with specs/, data/ and dvc.yaml"
REMOTE_NAME = "storage"


@dataclass(frozen=True)
class Initialised:
    commit: str | None  # None: everything was already committed
    remote: str | None  # the default DVC remote's name, if there is one


def init_repository(path: Path, remote: str | None = None) -> Initialised:
    """git init + dvc init + ``specs/``, ``data/``, root ``dvc.yaml``, ``.gitignore`` entries,
    optionally a default DVC remote, then one commit of exactly those files; safe to run again.
    """
    path.mkdir(parents=True, exist_ok=True)
    git.init(path)
    dvc.init(path)
    for keep in KEEP_FILES:
        (path / keep).parent.mkdir(exist_ok=True)
        if not (path / keep).exists():
            (path / keep).write_text("")
    ensure_root_dvc_yaml(path)
    ignore = path / ".gitignore"
    lines = ignore.read_text("utf-8").splitlines() if ignore.exists() else []
    missing = [line for line in GITIGNORE_LINES if line not in lines]
    if missing:
        write_if_changed(ignore, "\n".join([*lines, *missing]) + "\n")
    message = INIT_MESSAGE
    if remote is not None:
        url = remote_url(remote)
        dvc.set_default_remote(path, url, REMOTE_NAME)
        message += f"; DVC remote {REMOTE_NAME} -> {url}"
    paths = [p for p in COMMITTED if (path / p).exists()]
    commit = git.commit_paths(path, paths, message)
    return Initialised(commit, dvc.default_remote(path))


def remote_url(remote: str) -> str:
    """A URL (``s3://…``, ``ssh://…``) as given; a local folder as an absolute path."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", remote):
        return remote
    return os.path.abspath(os.path.expanduser(remote))
