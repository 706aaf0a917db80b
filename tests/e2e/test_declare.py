"""The API's write path without the HTTP around it: real git repositories in temp folders,
``gitops.declare`` writing and committing desired state."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import bundled_rows, commit, git, write_csv

from reconciler.core.spec import MAX_DATASETS, Dataset
from reconciler.errors import ConflictError, DataError, NotFoundError, QuotaError, StateError
from reconciler.gitops import declare

LABELS = ("database", "games", "mail", "sound")
SPEC = """\
# kept as written
apiVersion: flywheel-reconciler/v1
name: demo
task:
  mode: MULTI_CLASS
  labels: [database, games, mail, sound]   # four of Debian's sections
datasets:
  - name: d0
    type: TRAIN
    path: data/demo/d0.csv
activeModel: v1  # flywheel:policy
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q")
    write_csv(repo / "data/demo/d0.csv", bundled_rows("debian-sections", "train-v1.csv",
                                                       LABELS, 3))
    (repo / "specs/demo.yaml").write_text(SPEC, "utf-8")
    commit(repo, "demo")
    return repo


def source(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    return write_csv(tmp_path / "upload.csv", rows)


def dataset(name: str) -> Dataset:
    return Dataset(name=name, type="TRAIN", path=declare.new_dataset_path("demo", name))


def test_a_pin_replaces_the_policy_line_and_keeps_every_other_byte(root: Path) -> None:
    done = declare.pin(root, "demo", "v3")
    text = (root / "specs/demo.yaml").read_text("utf-8")
    assert text == SPEC.replace("activeModel: v1  # flywheel:policy", "activeModel: v3")
    assert done.commit == git(root, "rev-parse", "HEAD")
    assert git(root, "log", "-1", "--format=%s") == "UpdateFlywheel demo: pin activeModel to v3"


def test_a_dataset_is_copied_declared_and_committed_together(root: Path, tmp_path: Path) -> None:
    rows = bundled_rows("debian-sections", "train-v1.csv", LABELS, 2, skip=3)
    done, documents = declare.add_dataset(root, "demo", dataset("d1"), source(tmp_path, rows))
    assert documents == 8
    assert set(done.paths) == {"specs/demo.yaml", "data/demo/d1.csv"}
    spec = yaml.safe_load((root / "specs/demo.yaml").read_text("utf-8"))
    assert [d["name"] for d in spec["datasets"]] == ["d0", "d1"]
    assert git(root, "status", "--porcelain", "--", "specs", "data") == ""
    assert "# four of Debian's sections" in (root / "specs/demo.yaml").read_text("utf-8")


def test_a_bad_file_declares_nothing_and_leaves_nothing(root: Path, tmp_path: Path) -> None:
    head = git(root, "rev-parse", "HEAD")
    with pytest.raises(DataError) as info:
        declare.add_dataset(root, "demo", dataset("d1"),
                            source(tmp_path, [("games", "fine"), ("nope", "bad label")]),
                            shown="s3://bucket/upload.csv")
    assert str(info.value).startswith("s3://bucket/upload.csv:2: ")
    assert git(root, "rev-parse", "HEAD") == head
    assert git(root, "status", "--porcelain", "--untracked-files=all", "--", "specs", "data") == ""
    assert not (root / "data/demo/d1.csv").exists()


def test_a_spec_with_uncommitted_edits_is_refused_not_committed(root: Path) -> None:
    path = root / "specs/demo.yaml"
    path.write_text(path.read_text("utf-8") + "# a person is typing\n", "utf-8")
    with pytest.raises(ConflictError, match="uncommitted changes"):
        declare.pin(root, "demo", "v2")
    assert path.read_text("utf-8").endswith("# a person is typing\n")
    assert git(root, "log", "-1", "--format=%s") == "demo"


def test_a_full_spec_is_a_quota_error(root: Path, tmp_path: Path) -> None:
    lines = [SPEC.split("datasets:\n")[0], "datasets:\n"]
    for index in range(MAX_DATASETS):
        lines.append(f"  - {{name: d{index}, type: TRAIN, path: data/demo/d{index}.csv}}\n")
        if index:
            (root / f"data/demo/d{index}.csv").write_text("games,x\n", "utf-8")
    (root / "specs/demo.yaml").write_text("".join(lines), "utf-8")
    commit(root, "full")
    with pytest.raises(QuotaError, match=f"declares {MAX_DATASETS} datasets"):
        declare.add_dataset(root, "demo", dataset("more"), source(tmp_path, [("games", "x")]))


def test_unknown_flywheels_and_non_repositories_are_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no flywheel named 'other'"):
        declare.delete_flywheel(root, "other")
    bare = tmp_path / "not-git"
    (bare / "specs").mkdir(parents=True)
    with pytest.raises(StateError, match="is not a git repository"):
        declare.pin(bare, "demo", "v1")
