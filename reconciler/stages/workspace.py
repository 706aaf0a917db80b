"""Where a flywheel's pipeline files and stage outputs live (shared by stages and adapters)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

PIPELINES_DIR = "pipelines"
LAKE_DIR = "lake"


@dataclass(frozen=True)
class Workspace:
    """Repository-relative paths of one flywheel's pipeline."""

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
    def model(self) -> PurePosixPath:
        return self.out / "model.skops"

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
    def models(self) -> PurePosixPath:
        return self.lake / "models"

    def model_file(self, version: str) -> PurePosixPath:
        return self.models / f"{version}.skops"

    @property
    def history(self) -> PurePosixPath:
        return self.lake / "f1_history.csv"
