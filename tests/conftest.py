"""Shared helpers for tests that drive the real CLI, real git and real DVC in temp repos."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
BUNDLED = PROJECT / "data"
FLYWHEEL = str(Path(sys.executable).with_name("flywheel"))


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


def run_cli(repo: Path, *args: str, check: int | None = 0) -> Run:
    """Run the real ``flywheel`` console script in ``repo``; assert the exit code if given."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run([FLYWHEEL, *args], cwd=repo, capture_output=True, text=True, env=env,
                          timeout=600)
    result = Run(done.returncode, done.stdout, done.stderr)
    if check is not None:
        assert done.returncode == check, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return result


def bundled_rows(dataset: str, file: str, labels: Iterable[str], per_label: int,
                 skip: int = 0) -> list[tuple[str, str]]:
    """Rows of a bundled CSV: ``per_label`` documents of each label, after skipping ``skip``."""
    wanted = set(labels)
    taken: dict[str, int] = {}
    seen: dict[str, int] = {}
    rows = []
    with (BUNDLED / dataset / file).open(encoding="utf-8", newline="") as handle:
        for label, text in csv.reader(handle):
            if label not in wanted:
                continue
            seen[label] = seen.get(label, 0) + 1
            if seen[label] <= skip or taken.get(label, 0) >= per_label:
                continue
            taken[label] = taken.get(label, 0) + 1
            rows.append((label, text))
    return rows


def write_csv(path: Path, rows: Iterable[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def git(repo: Path, *args: str) -> str:
    """Run real git in ``repo``; its stdout, stripped."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: Path, message: str) -> None:
    """Commit everything, as a person (not the reconciler) would."""
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=Person", "-c", "user.email=person@example.org", "commit", "-q",
        "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty flywheel repository: real git + real DVC."""
    root = tmp_path / "repo"
    run_cli(tmp_path, "init", str(root))
    return root


@pytest.fixture
def cli(repo: Path) -> Callable[..., Run]:
    def call(*args: str, check: int | None = 0) -> Run:
        return run_cli(repo, *args, check=check)

    return call
