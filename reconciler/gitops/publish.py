"""`flywheel publish`: what a CI job does after its reconcile.

1. ``dvc push`` the model versions (``lake/<name>/models.dvc``) and the pipelines' cached outputs
   to the DVC remote, first, so that no pushed commit ever names a model the remote lacks;
2. commit the lake's records and the pipelines' ``dvc.yaml``/``params.yaml``/``dvc.lock`` (those
   paths only: nothing else the job may have touched), never an empty commit;
3. push it, rebasing onto concurrent pushes and trying again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters import git
from reconciler.adapters.dvc import DvcSession
from reconciler.core.layout import LAKE_DIR, PIPELINES_DIR, PUBLISH_LOG, Workspace

DEFAULT_MESSAGE = "flywheel: lake records and pipeline locks after reconcile"


@dataclass(frozen=True)
class Published:
    models_pushed: int
    commit: str | None
    pushed_to: str | None


def publish(root: Path, *, dvc_push: bool = True, dvc_remote: str | None = None,
            push: bool = False, remote: str = "origin", message: str = DEFAULT_MESSAGE,
            skip_ci: str = git.SKIP_CI_MARKER) -> Published:
    every = Workspace("*")  # glob patterns of every flywheel's files
    models = sorted(str(p.relative_to(root)) for p in root.glob(str(every.models_dvc)))
    # The pipelines' cached outputs too (the latest trained model), so that a plain `dvc pull`
    # in another clone finds everything the committed dvc.lock files name.
    models += sorted(str(p.relative_to(root)) for p in root.glob(str(every.dvc_yaml)))
    sent = 0
    if dvc_push and models:
        with DvcSession(root, root / PUBLISH_LOG) as dvc:
            sent = dvc.push(models, remote=dvc_remote)
    paths = [p for p in (LAKE_DIR, PIPELINES_DIR) if (root / p).exists()]
    commit = git.commit_paths(root, paths, git.with_marker(message, skip_ci)) if paths else None
    pushed = git.push(root, remote) if push else None  # also the write-backs made earlier
    return Published(sent, commit, pushed)
