"""GitOps: write-back of policy promotions, pins that stick, plan, suspend, iterate requests,
lineage, hooks and the CI publish step, with real git (bare remotes) and real DVC remotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, bundled_rows, commit, git, run_cli, write_csv

LABELS = ["games", "mail", "science", "sound"]
SPEC = "specs/packages.yaml"
HEADER = """\
# The packages flywheel. Comments, blank lines and layout must survive write-back.
apiVersion: flywheel-reconciler/v1
name: packages   # a trailing comment
description: >-
  Debian package descriptions,
  folded over two lines.
task:
  mode: MULTI_CLASS
  labels: [games, mail, science, sound]

datasets:
"""
FOOTER = """\
  - {name: test, type: TEST, path: data/test.csv}
promotion:
  minF1: 0.0
  minImprovement: -1.0   # every new version is promoted
  writeBack: true
"""


def spec_text(*train: str, extra: str = "") -> str:
    rows = "".join(f"  - {{name: {t}, type: TRAIN, path: data/{t}.csv}}\n" for t in train)
    return HEADER + rows + FOOTER + extra


def status(repo: Path) -> dict:
    return json.loads((repo / "lake/packages/status.json").read_text())


def records(repo: Path) -> list[dict]:
    folder = repo / "lake/packages/iterations"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.fixture
def flywheel(repo: Path) -> Path:
    """A repository with one committed flywheel (writeBack on) and three dataset versions."""
    for i, name in enumerate(("v1", "v2", "v3")):
        write_csv(repo / f"data/{name}.csv",
                  bundled_rows("debian-sections", "train-v3.csv", LABELS, 20, skip=20 * i))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 10))
    (repo / SPEC).write_text(spec_text("v1"))
    commit(repo, "Declare the packages flywheel")
    return repo


def test_write_back_edits_one_line_commits_it_and_a_persons_edit_wins(flywheel: Path) -> None:
    repo = flywheel
    original = (repo / SPEC).read_text()
    run_cli(repo, "reconcile")
    assert status(repo)["activeModel"] == "v1"
    text = (repo / SPEC).read_text()
    assert text == original + "activeModel: v1  # flywheel:policy\n"  # appended, nothing else
    subject = git(repo, "log", "-1", "--format=%s")
    assert subject.startswith("flywheel: packages activeModel none -> v1 (F1 0.")
    assert subject.endswith("[skip ci]")
    assert git(repo, "show", "--name-only", "--format=", "HEAD").splitlines() == [SPEC]
    head = git(repo, "rev-parse", "HEAD")

    run_cli(repo, "reconcile")  # nothing changed: no commit, empty or not
    assert git(repo, "rev-parse", "HEAD") == head

    (repo / SPEC).write_text(text.replace(FOOTER, "  - {name: v2, type: TRAIN, path: "
                                          "data/v2.csv}\n" + FOOTER))
    commit(repo, "Add dataset v2")
    before = (repo / SPEC).read_text()
    run_cli(repo, "reconcile")
    assert status(repo)["activeModel"] == "v2"
    after = (repo / SPEC).read_text()
    assert after == before.replace("activeModel: v1  #", "activeModel: v2  #")
    trained = records(repo)[-1]["trainedModelMetrics"]["AverageF1Score"]
    assert f"v1 -> v2 (F1 {trained:.4f} vs " in git(repo, "log", "-1", "--format=%s")
    assert status(repo)["writeBack"] == {
        **status(repo)["writeBack"], "version": "v2", "previous": "v1", "pending": False,
        "commit": git(repo, "rev-parse", "HEAD")}

    # A person rolls back with git: the reverted line is a pin, and it sticks.
    git(repo, "-c", "user.name=Person", "-c", "user.email=person@example.org", "revert",
        "--no-edit", "HEAD")
    run_cli(repo, "reconcile")
    assert status(repo)["activeModel"] == "v1" and status(repo)["pinned"] is True
    assert status(repo)["promotions"][-1]["kind"] == "PIN"
    text = (repo / SPEC).read_text()
    (repo / SPEC).write_text(text.replace(FOOTER, "  - {name: v3, type: TRAIN, path: "
                                          "data/v3.csv}\n" + FOOTER))
    commit(repo, "Add dataset v3")
    head = git(repo, "rev-parse", "HEAD")
    run_cli(repo, "reconcile")
    last = records(repo)[-1]
    assert last["status"] == "COMPLETED" and last["decision"]["promote"] is False
    assert "pinned" in last["decision"]["reason"]
    assert status(repo)["activeModel"] == "v1"
    assert git(repo, "rev-parse", "HEAD") == head  # the policy did not touch the person's line
    assert "activeModel: v1  # flywheel:policy" in (repo / SPEC).read_text()


def test_a_line_without_the_marker_is_never_rewritten(flywheel: Path) -> None:
    repo = flywheel
    run_cli(repo, "reconcile")
    pinned = spec_text("v1", "v2").replace("promotion:", "activeModel: v1   # ours\npromotion:")
    (repo / SPEC).write_text(pinned)
    commit(repo, "Pin v1 and add v2")
    head = git(repo, "rev-parse", "HEAD")
    run_cli(repo, "reconcile")
    assert status(repo)["activeModel"] == "v1" and status(repo)["pinned"] is True
    assert (repo / SPEC).read_text() == pinned
    assert git(repo, "rev-parse", "HEAD") == head


def test_uncommitted_edits_of_the_spec_hold_the_write_back(flywheel: Path) -> None:
    repo = flywheel
    (repo / SPEC).write_text(spec_text("v1") + "# an edit in progress\n")
    head = git(repo, "rev-parse", "HEAD")
    run_cli(repo, "reconcile")
    assert git(repo, "rev-parse", "HEAD") == head
    written = status(repo)["writeBack"]
    assert written["pending"] is True and "uncommitted changes" in written["note"]
    commit(repo, "Finish the edit")
    run_cli(repo, "reconcile")
    assert status(repo)["writeBack"]["pending"] is False
    assert (repo / SPEC).read_text().endswith("# an edit in progress\n"
                                              "activeModel: v1  # flywheel:policy\n")


def bare_remote(repo: Path) -> Path:
    remote = repo.parent / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "HEAD")
    return remote


def test_push_rebases_onto_a_concurrent_push_and_can_target_a_bot_branch(flywheel: Path) -> None:
    repo = flywheel
    remote = bare_remote(repo)
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    other = repo.parent / "other"
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], check=True)
    (other / "NOTES.md").write_text("someone else pushed first\n")
    commit(other, "Someone else's commit")
    git(other, "push", "-q", "origin", "HEAD")

    run_cli(repo, "reconcile", "--push")
    log = git(remote, "log", "--format=%s", branch).splitlines()
    assert log[0].startswith("flywheel: packages activeModel none -> v1")
    assert log[1] == "Someone else's commit"  # rebased on top, nothing lost

    (repo / SPEC).write_text((repo / SPEC).read_text().replace(
        FOOTER, "  - {name: v2, type: TRAIN, path: data/v2.csv}\n" + FOOTER))
    commit(repo, "Add v2")
    git(repo, "push", "-q", "origin", "HEAD")
    run_cli(repo, "reconcile", "--push-branch", "flywheel/promotions")
    assert git(remote, "log", "-1", "--format=%s", branch) == "Add v2"  # untouched
    bot = git(remote, "log", "-1", "--format=%s", "flywheel/promotions")
    assert bot.startswith("flywheel: packages activeModel v1 -> v2")


def test_plan_says_what_would_happen_and_changes_nothing(flywheel: Path) -> None:
    repo = flywheel
    before = git(repo, "status", "--porcelain")
    planned = run_cli(repo, "plan", "-o", "json", check=1).json()
    (entry,) = planned["Flywheels"]
    assert entry["State"] == "PENDING" and planned["Pending"] == 1
    assert entry["Actions"][0]["Action"] == "ITERATE"
    assert entry["Actions"][0]["Reason"] == "first iteration"
    assert not (repo / "lake").exists() and git(repo, "status", "--porcelain") == before
    assert "first iteration" in run_cli(repo, "plan", check=1).stdout

    run_cli(repo, "reconcile")
    assert run_cli(repo, "plan", "-o", "json").json()["Flywheels"][0]["State"] == "UP_TO_DATE"

    (repo / SPEC).write_text(spec_text("v1", "v2", extra="suspend: true\n"))
    suspended = run_cli(repo, "plan", "-o", "json").json()["Flywheels"][0]
    assert suspended["State"] == "SUSPENDED" and suspended["Actions"] == []
    iterations = len(records(repo))
    run_cli(repo, "reconcile")
    assert len(records(repo)) == iterations  # suspended: the new dataset waits

    (repo / SPEC).write_text(spec_text("v1", "v2") + "unknownField: 1\n")
    broken = run_cli(repo, "plan", check=2)
    assert "specs/packages.yaml" in broken.stdout + broken.stderr


def test_records_trace_back_to_the_spec_commit(flywheel: Path) -> None:
    repo = flywheel
    head = git(repo, "rev-parse", "HEAD")
    run_cli(repo, "reconcile", "--no-commit")
    (record,) = records(repo)
    assert record["sourceRevision"]["commit"] == head
    assert record["sourceRevision"]["dirty"] is False
    assert record["sourceRevision"]["reconcilerVersion"]
    version = json.loads((repo / "lake/packages/versions/v1.json").read_text())
    assert version["sourceRevision"] == record["sourceRevision"]
    assert status(repo)["promotions"][-1]["sourceRevision"]["commit"] == head

    (repo / SPEC).write_text(spec_text("v1", "v2"))  # not committed
    run_cli(repo, "reconcile", "--no-commit")
    assert records(repo)[-1]["sourceRevision"]["dirty"] is True


def test_iterate_is_acknowledged_in_the_status(flywheel: Path) -> None:
    repo = flywheel
    run_cli(repo, "reconcile")
    asked = run_cli(repo, "iterate", "packages")
    token = (repo / ".flywheel/requests/packages").read_text().strip()
    assert f"request {token} handled" in asked.stderr
    assert status(repo)["lastHandledIterationRequest"] == token
    assert len(records(repo)) == 1  # up to date: answered, nothing to train on

    (repo / SPEC).write_text(spec_text("v1", "v2"))
    commit(repo, "Add v2")
    run_cli(repo, "iterate", "packages", "--no-wait")
    token = (repo / ".flywheel/requests/packages").read_text().strip()
    planned = run_cli(repo, "plan", "-o", "json", check=1).json()["Flywheels"][0]
    assert planned["Actions"][0]["Request"] == token
    run_cli(repo, "reconcile")
    assert records(repo)[-1]["iterationRequest"] == token
    assert status(repo)["lastHandledIterationRequest"] == token
    run_cli(repo, "plan")  # exit 0: the request is answered


def test_hooks_reconcile_in_the_background_after_a_commit(flywheel: Path) -> None:
    repo = flywheel
    hook = repo / ".git/hooks/post-commit"
    hook.write_text("#!/bin/sh\necho existing >> .git/existing-hook.log\nexit 0\n")
    hook.chmod(0o755)
    run_cli(repo, "install-hook")
    run_cli(repo, "install-hook")  # idempotent
    assert hook.read_text().count("flywheel-reconciler >>>") == 1
    commits_before = int(git(repo, "rev-list", "--count", "HEAD"))
    started = time.monotonic()
    (repo / "README.md").write_text("no spec or data change\n")
    commit(repo, "Docs only")
    (repo / SPEC).write_text(spec_text("v1", "v2"))
    commit(repo, "Add v2")
    assert time.monotonic() - started < 10  # the commits did not wait for training
    deadline = time.monotonic() + 180
    while not (repo / "lake/packages/status.json").exists() or \
            not status(repo).get("writeBack", {}).get("commit"):  # promoted and written back
        assert time.monotonic() < deadline, (repo / ".flywheel/logs/hook.log").read_text()
        time.sleep(0.2)
    # The hook that was there still runs for every commit, the write-back's included ...
    commits = int(git(repo, "rev-list", "--count", "HEAD")) - commits_before
    assert commits == 3  # docs, v2, and the write-back of v1
    assert (repo / ".git/existing-hook.log").read_text() == "existing\n" * commits
    # ... but only the commit that touched specs/ reconciled: not the docs, not the write-back.
    log = (repo / ".flywheel/logs/hook.log").read_text()
    assert log.count("event=planned") == 1


def remotes(repo: Path) -> tuple[Path, Path]:
    """A bare git remote and a local-folder DVC remote (the default), both committed and pushed."""
    remote = bare_remote(repo)
    storage = repo.parent / "dvc-storage"
    subprocess.run([str(Path(sys.executable).with_name("dvc")), "remote", "add", "-d",
                    "storage", str(storage)], cwd=repo, check=True, capture_output=True)
    commit(repo, "DVC remote")
    git(repo, "push", "-q", "origin", "HEAD")
    return remote, storage


def test_publish_pushes_models_to_dvc_and_records_to_git(flywheel: Path) -> None:
    repo = flywheel
    remote, storage = remotes(repo)
    run_cli(repo, "reconcile", "--push", "--report", str(repo.parent / "report.md"))
    done = run_cli(repo, "publish", "--push")
    sent = int(done.stderr.split("files pushed to the DVC remote: ")[1].split(";")[0])
    assert sent >= 1 and any(p.is_file() for p in storage.rglob("*"))
    report = (repo.parent / "report.md").read_text()
    assert report.startswith("<!-- flywheel-reconciler report -->")
    assert "### packages" in report and (repo.parent / "charts/packages-f1.png").is_file()
    files = git(remote, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    assert "lake/packages/status.json" in files and "lake/packages/models.dvc" in files
    assert any(f.startswith("pipelines/packages/dvc.lock") for f in files)
    assert "lake/packages/models/v1.skops" not in files  # models live in DVC, not git
    assert git(remote, "log", "-1", "--format=%s").endswith("[skip ci]")
    again = run_cli(repo, "publish", "--push")
    assert "commit: none (nothing changed)" in again.stderr


def workflow_steps(event: str) -> list[str]:
    """The shell commands the shipped GitHub Actions workflow runs for ``event``, in order."""
    workflow = yaml.safe_load((PROJECT / "examples/ci/github-actions.yml").read_text())
    commands = []
    for step in workflow["jobs"]["reconcile"]["steps"]:
        if "run" not in step or step.get("name") == "Install":
            continue
        condition = step.get("if", "")
        if ("!= 'pull_request'" in condition and event == "pull_request") or \
                ("== 'pull_request'" in condition and event != "pull_request"):
            continue
        commands.append(step["run"])
    return commands


def ci_run(remote: Path, workdir: Path, event: str) -> Path:
    """A fresh checkout, as a runner makes one, then the workflow's own commands."""
    subprocess.run(["git", "clone", "-q", str(remote), str(workdir)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    for command in workflow_steps(event):
        done = subprocess.run(["bash", "-e", "-c", command], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return workdir


def test_the_shipped_ci_workflow_runs_against_real_remotes(flywheel: Path) -> None:
    repo = flywheel
    remote, _ = remotes(repo)

    ci_run(remote, repo.parent / "ci-1", "push")
    log = git(remote, "log", "--format=%s").splitlines()
    assert log[0].startswith("flywheel: lake records") and log[0].endswith("[skip ci]")
    assert log[1].startswith("flywheel: packages activeModel none -> v1")

    git(repo, "pull", "-q", "--rebase", "origin")  # the person gets the job's commits
    assert "activeModel: v1  # flywheel:policy" in (repo / SPEC).read_text()
    (repo / SPEC).write_text((repo / SPEC).read_text().replace(
        FOOTER, "  - {name: v2, type: TRAIN, path: data/v2.csv}\n" + FOOTER))
    commit(repo, "Add dataset v2")
    git(repo, "push", "-q", "origin", "HEAD")

    review = ci_run(remote, repo.parent / "ci-pr", "pull_request")
    assert git(remote, "log", "-1", "--format=%s") == "Add dataset v2"  # a PR pushes nothing
    report = (review / "flywheel-report.md").read_text()
    assert "Iterated and promoted" in report and "v2" in report

    second = ci_run(remote, repo.parent / "ci-2", "push")
    (_, latest) = records(second)
    assert latest["evaluatedModelVersion"] == "v1"  # the model came back from the DVC remote
    assert latest["evaluatedModelMetrics"]["AverageF1Score"] > 0
    assert "activeModel: v2  # flywheel:policy" in git(remote, "show", f"HEAD:{SPEC}")
