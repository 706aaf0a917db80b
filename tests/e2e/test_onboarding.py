"""A new user's first hour, as the README tells it: the "Your own data" walkthrough run as it
stands, and the by-hand DVC commands in a fresh clone without the virtual environment on PATH.
Real git, real DVC (a local-folder remote), the real ``flywheel`` CLI, no mocks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, bundled_rows, commit, git, run_cli, write_csv

VENV_BIN = Path(sys.executable).parent
DVC = str(VENV_BIN / "dvc")
LABELS = ["games", "mail", "science", "sound"]


def readme_block(heading: str) -> str:
    """The first ``sh`` code block of the README section ``heading``."""
    text = (PROJECT / "README.md").read_text("utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no sh block under ## {heading}"
    return match.group(1)


def path_without_venv() -> str:
    """PATH with the virtual environment left out: a bare ``python`` is not the project's."""
    keep = [p for p in os.environ["PATH"].split(os.pathsep)
            if p and Path(p).resolve() != VENV_BIN.resolve()]
    return os.pathsep.join(keep)


def without_the_project(tmp_path: Path) -> Path:
    """A folder of ``python``/``python3`` that lack the project, as a bare system Python does,
    whatever this machine's own ``python`` has installed."""
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    for name in ("python", "python3"):
        (fake / name).write_text("#!/bin/sh\necho \"No module named 'reconciler'\" >&2\nexit 1\n")
        (fake / name).chmod(0o755)
    return fake


def scratch_home(tmp_path: Path) -> dict[str, str]:
    """A home folder with a git identity, as a person's machine has, and no venv on PATH."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = New User\n\temail = new@example.org\n"
                                     "[init]\n\tdefaultBranch = main\n")
    return {**os.environ, "HOME": str(home), "DVC_NO_ANALYTICS": "1", "NO_COLOR": "1",
            "COLUMNS": "200", "PATH": path_without_venv(), "GIT_CONFIG_NOSYSTEM": "1"}


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", script], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    env = scratch_home(tmp_path)
    home = Path(env["HOME"])
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"  # "flywheel and dvc on your PATH"
    write_csv(home / "my-data/train.csv",
              bundled_rows("debian-sections", "train-v3.csv", LABELS, 20))
    write_csv(home / "my-data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 10))
    block = readme_block("Your own data, step by step")

    done = bash(block, home, env)

    repo, clone = home / "flywheels", home / "elsewhere"
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert subjects[-1].startswith("flywheel init: ")  # init committed what it created
    assert "DVC remote storage -> " + str(home / "dvc-storage") in subjects[-1]
    assert subjects[0].startswith("flywheel: lake records")  # publish committed the lake
    assert git(repo, "status", "--porcelain") == ""  # nothing left untracked or modified
    hint = [line for line in done.stderr.splitlines() if line.startswith("hint: ")]
    assert hint and "`flywheel publish`" in hint[0]
    assert block.index("flywheel publish") > block.index("flywheel reconcile")
    assert any(p.is_file() for p in (home / "dvc-storage").rglob("*"))
    assert (clone / "lake/packages/models/v1.skops").is_file()
    assert "v1" in done.stdout and any(label in done.stdout for label in LABELS)
    assert git(clone, "status", "--porcelain") == ""

    # A clone that did not pull yet: classify names a command, and that command works.
    third = home / "third"
    git(home, "clone", "-q", str(repo), str(third))
    refused = subprocess.run(["flywheel", "classify", "packages", "a chess game"], cwd=third,
                             env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0
    (command,) = re.findall(r"run `([^`]+)`", refused.stderr)
    bash(command, third, env)
    again = subprocess.run(["flywheel", "classify", "packages", "a chess game"], cwd=third,
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "v1" in again.stdout


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A committed, reconciled and published ``debian-sections`` flywheel (small data), with a
    local-folder DVC remote (``dvc remote add -d``, the by-hand way)."""
    repo = tmp_path / "repo"
    run_cli(tmp_path, "init", str(repo))
    subprocess.run([DVC, "remote", "add", "-d", "storage", str(tmp_path / "dvc-storage")],
                   cwd=repo, check=True, capture_output=True)
    write_csv(repo / "data/train.csv", bundled_rows("debian-sections", "train-v3.csv", LABELS,
                                                    20))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 10))
    spec = {"apiVersion": "flywheel-reconciler/v1", "name": "debian-sections",
            "task": {"mode": "MULTI_CLASS", "labels": LABELS},
            "datasets": [{"name": "train", "type": "TRAIN", "path": "data/train.csv"},
                         {"name": "test", "type": "TEST", "path": "data/test.csv"}],
            "promotion": {"minF1": 0.0}}
    (repo / "specs/debian-sections.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    commit(repo, "Declare debian-sections")
    run_cli(repo, "reconcile")
    run_cli(repo, "publish")
    assert git(repo, "status", "--porcelain") == ""
    return repo


def fresh_clone(repo: Path, where: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(repo), str(where)], check=True)
    return where


def test_dvc_by_hand_in_a_fresh_clone_without_the_venv(published: Path, tmp_path: Path) -> None:
    env = scratch_home(tmp_path)
    env["PATH"] = f"{without_the_project(tmp_path)}{os.pathsep}{env['PATH']}"
    clone = fresh_clone(published, tmp_path / "clone")
    lock = (clone / "pipelines/debian-sections/dvc.lock").read_text()
    commands = [line.split("#", 1)[0].strip() for line in
                readme_block("Working with DVC by hand").splitlines()]
    commands = [c for c in commands if c]
    assert commands[0] == "dvc pull" and "dvc repro -P" in commands
    outputs = {}
    for command in commands:
        argv = command.split()
        assert argv[0] == "dvc"
        done = subprocess.run([DVC, *argv[1:]], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs[command] = done.stdout + done.stderr
    assert "sh pipelines/run-stage.sh prepare" in outputs["dvc repro -P"]  # it did run a stage
    assert "No module named" not in "".join(outputs.values())
    assert "AverageF1Score" in outputs["dvc metrics show"]
    assert "train" in outputs["dvc dag"] and "evaluate" in outputs["dvc dag"]
    # Nothing committed was removed or changed, and no machine's paths went into git.
    assert git(clone, "status", "--porcelain") == ""
    assert (clone / "pipelines/debian-sections/dvc.lock").read_text() == lock
    for committed in ("pipelines/debian-sections/dvc.yaml", "pipelines/debian-sections/dvc.lock",
                      "pipelines/run-stage.sh"):
        assert str(VENV_BIN.parent) not in (clone / committed).read_text()


def test_a_failed_stage_by_hand_leaves_the_committed_outputs(published: Path,
                                                              tmp_path: Path) -> None:
    env = scratch_home(tmp_path)
    clone = fresh_clone(published, tmp_path / "clone")
    subprocess.run([DVC, "pull", "-q"], cwd=clone, env=env, check=True, timeout=600)
    # A Python without the project, wherever the stage command looks for one.
    fake = without_the_project(tmp_path)
    env = {**env, "PATH": f"{fake}{os.pathsep}{env['PATH']}",
           "FLYWHEEL_PYTHON": str(fake / "python")}
    done = subprocess.run([DVC, "repro", "-P"], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode != 0 and "failed to reproduce" in done.stderr
    assert git(clone, "status", "--porcelain") == ""  # prepare.json & co. are still there
    assert (clone / "pipelines/debian-sections/out/prepare.json").is_file()


def test_init_commits_what_it_creates_and_sets_the_dvc_remote(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "init", "repo", "--remote", "storage")
    repo = tmp_path / "repo"
    assert "committed " in done.stderr and "no DVC remote" not in done.stderr
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    files = git(repo, "ls-files").splitlines()
    assert {".gitignore", ".dvcignore", ".dvc/config", "dvc.yaml", "specs/.gitkeep",
            "data/.gitkeep"} <= set(files)
    remote = subprocess.run([DVC, "remote", "list"], cwd=repo, capture_output=True, text=True,
                            check=True).stdout.split()
    assert remote == ["storage", str(tmp_path / "storage"), "(default)"]  # made absolute
    head = git(repo, "rev-parse", "HEAD")
    again = run_cli(tmp_path, "init", "repo", "--remote", "storage")
    assert "nothing new to commit" in again.stderr and git(repo, "rev-parse", "HEAD") == head
    bare = run_cli(tmp_path, "init", "plain")
    assert "no DVC remote for the models yet: `flywheel init --remote PATH_OR_URL`" in bare.stderr


def test_a_reconcile_that_changed_the_lake_hints_at_publish(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli(tmp_path, "init", str(repo))
    write_csv(repo / "data/train.csv", bundled_rows("debian-sections", "train-v3.csv", LABELS,
                                                    20))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 10))
    spec = {"apiVersion": "flywheel-reconciler/v1", "name": "packages",
            "task": {"mode": "MULTI_CLASS", "labels": LABELS},
            "datasets": [{"name": "train", "type": "TRAIN", "path": "data/train.csv"},
                         {"name": "test", "type": "TEST", "path": "data/test.csv"}]}
    (repo / "specs/packages.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    commit(repo, "Declare packages")
    first = run_cli(repo, "reconcile")
    (hint,) = [line for line in first.stderr.splitlines() if line.startswith("hint: ")]
    assert "`flywheel init --remote PATH_OR_URL`" in hint and "`flywheel publish`" in hint
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("Reconciled: 1 iteration(s)"), "the summary stays the last line"
    run_cli(repo, "publish", "--no-dvc-push")
    again = run_cli(repo, "reconcile")  # nothing changed: no hint
    assert "hint: " not in again.stderr
