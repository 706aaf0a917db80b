"""Every path the reconciler reads or writes in a repository, defined once.

Pure (``PurePosixPath`` and strings only): faces, adapters, stages and the daemon all take their
paths from here, so the repository layout can be read in one screen::

    specs/NAME.yaml                       desired state (one flywheel per file)
    data/…                                the datasets the specs declare
    pipelines/run-stage.sh                the stage launcher DVC runs
    pipelines/NAME/{dvc.yaml,params.yaml,dvc.lock,out/}   a flywheel's generated pipeline
    lake/NAME/{status.json,iterations/,versions/,evaluation/,models/,f1_history.csv}
    .flywheel/                            local state, ignored by git:
      locks/{NAME.lock,dvc,watch.lock}    the flywheel, DVC and daemon locks
      logs/NAME/ITERATION.log             each iteration's stage output (and publish, hook logs)
      cache/hashes.json                   dataset MD5s keyed by stat
      requests/NAME                       `flywheel iterate` request tokens
      snapshots/NAME/                     the prepare stage's point-in-time copies of datasets
      charts/NAME-f1.png                  `flywheel plot` and the demo's charts
      watch/status.json                   what the watch daemon is doing
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

SPECS_DIR = "specs"
DATA_DIR = "data"
PIPELINES_DIR = "pipelines"
LAKE_DIR = "lake"
#: Endpoints (the API's CreateEndpoint), one YAML file each: declared state that no reconcile
#: acts on (an endpoint serves its flywheel's active model), so no change under it wakes one.
ENDPOINTS_DIR = "endpoints"
#: The folders whose changes wake the reconciler (git hooks, the watch daemon).
DESIRED_STATE_DIRS = (SPECS_DIR, DATA_DIR)

#: Local state: ignored by git, safe to delete (caches rebuild, locks are re-taken).
STATE_DIR = ".flywheel"
LOCKS_DIR = f"{STATE_DIR}/locks"
LOGS_DIR = f"{STATE_DIR}/logs"
CACHE_DIR = f"{STATE_DIR}/cache"
HASH_CACHE = f"{CACHE_DIR}/hashes.json"
REQUESTS_DIR = f"{STATE_DIR}/requests"
SNAPSHOTS_DIR = f"{STATE_DIR}/snapshots"
CHARTS_DIR = f"{STATE_DIR}/charts"
#: Inputs being received (CreateDataset's file, before it is checked and declared).
INCOMING_DIR = f"{STATE_DIR}/incoming"
WATCH_STATUS = f"{STATE_DIR}/watch/status.json"
WATCH_LOCK = f"{LOCKS_DIR}/watch.lock"
#: Held by every writer of desired state (the API's commits, the policy's write-back) around
#: read, edit, write and commit: two writers never interleave on one spec or on git's index.
DESIRED_STATE_LOCK = f"{LOCKS_DIR}/desired-state.lock"
#: Serialises every DVC command in the repository (DVC's own lock does not wait).
DVC_LOCK = f"{LOCKS_DIR}/dvc"
PUBLISH_LOG = f"{LOGS_DIR}/publish.log"
HOOK_LOG = f"{LOGS_DIR}/hook.log"

STAGE_LAUNCHER = f"{PIPELINES_DIR}/run-stage.sh"
MODEL_SUFFIX = ".skops"


def endpoint_file(name: str) -> PurePosixPath:
    return PurePosixPath(ENDPOINTS_DIR) / f"{name}.yaml"


def dataset_file(flywheel: str, dataset: str) -> PurePosixPath:
    """Where the API's CreateDataset puts a dataset's file."""
    return PurePosixPath(DATA_DIR) / flywheel / f"{dataset}.csv"


def flywheel_lock(name: str) -> PurePosixPath:
    """The lock held while a reconciler acts on one flywheel."""
    return PurePosixPath(LOCKS_DIR, f"{name}.lock")


def iteration_log(name: str, iteration_id: str) -> PurePosixPath:
    return PurePosixPath(LOGS_DIR, name, f"{iteration_id}.log")


def request_file(name: str) -> PurePosixPath:
    return PurePosixPath(REQUESTS_DIR, name)


def snapshot_dir(name: str) -> PurePosixPath:
    return PurePosixPath(SNAPSHOTS_DIR, name)


def chart_file_name(name: str) -> str:
    return f"{name}-f1.png"


def chart_file(name: str) -> PurePosixPath:
    return PurePosixPath(CHARTS_DIR, chart_file_name(name))


@dataclass(frozen=True)
class Workspace:
    """Repository-relative paths of one flywheel: its pipeline, stage outputs and lake folder."""

    flywheel: str

    @property
    def folder(self) -> PurePosixPath:
        return PurePosixPath(PIPELINES_DIR, self.flywheel)

    @property
    def dvc_yaml(self) -> PurePosixPath:
        return self.folder / "dvc.yaml"

    @property
    def params(self) -> PurePosixPath:
        return self.folder / "params.yaml"

    @property
    def dvc_lock(self) -> PurePosixPath:
        return self.folder / "dvc.lock"

    @property
    def out(self) -> PurePosixPath:
        return self.folder / "out"

    @property
    def train_data(self) -> PurePosixPath:
        return self.out / "train.jsonl"

    @property
    def test_data(self) -> PurePosixPath:
        return self.out / "test.jsonl"

    @property
    def prepare_summary(self) -> PurePosixPath:
        return self.out / "prepare.json"

    @property
    def drift(self) -> PurePosixPath:
        """The prepare stage's data drift of the new datasets (:mod:`reconciler.core.drift`)."""
        return self.out / "drift.json"

    @property
    def model(self) -> PurePosixPath:
        return self.out / f"model{MODEL_SUFFIX}"

    @property
    def train_summary(self) -> PurePosixPath:
        return self.out / "train.json"

    @property
    def trained_evaluation(self) -> PurePosixPath:
        return self.out / "trained_evaluation.json"

    @property
    def evaluation(self) -> PurePosixPath:
        return self.out / "evaluation.json"

    @property
    def metrics(self) -> PurePosixPath:
        return self.out / "metrics.json"

    @property
    def per_label(self) -> PurePosixPath:
        return self.out / "per_label_f1.csv"

    @property
    def lake(self) -> PurePosixPath:
        return PurePosixPath(LAKE_DIR, self.flywheel)

    @property
    def status(self) -> PurePosixPath:
        return self.lake / "status.json"

    @property
    def iterations(self) -> PurePosixPath:
        return self.lake / "iterations"

    @property
    def versions(self) -> PurePosixPath:
        return self.lake / "versions"

    @property
    def evaluations(self) -> PurePosixPath:
        return self.lake / "evaluation"

    @property
    def models(self) -> PurePosixPath:
        return self.lake / "models"

    @property
    def models_dvc(self) -> PurePosixPath:
        """DVC's record of the models folder (``dvc add``)."""
        return self.lake / "models.dvc"

    def model_file(self, version: str) -> PurePosixPath:
        return self.models / f"{version}{MODEL_SUFFIX}"

    @property
    def history(self) -> PurePosixPath:
        return self.lake / "f1_history.csv"
