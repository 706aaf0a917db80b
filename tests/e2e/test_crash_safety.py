"""Crash safety: the reconciler killed with SIGKILL at every named point of an iteration.

Each case copies one prepared repository (v1 trained, promoted and written back; dataset v2
declared and committed, so an iteration with an active model is due), runs ``flywheel reconcile``
with ``FLYWHEEL_FAILPOINT`` set so that the process (and, with the group flag, its DVC stage)
dies by SIGKILL at that point, checks the state the crash left, restarts, and checks again:

- right after the kill: every JSON in ``lake/`` parses and validates (writes are atomic);
- after the restart: every interrupted iteration is COMPLETED, or FAILED/STOPPED with a message;
- at the end: versions v1..vN contiguous, each model file with its recorded sha256 and nothing
  else in the DVC-tracked models folder, exactly one COMPLETED iteration per input digest, one
  promotion and one write-back commit per version, the F1 history complete, no temp file left,
  and DVC's own locks usable (a reconcile and ``dvc status`` succeed).

The points are listed in :data:`POINTS` (see :mod:`reconciler.failpoints` for the naming).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FLYWHEEL, bundled_rows, commit, git, run_cli, write_csv

from reconciler.adapters.files import is_temp_file
from reconciler.adapters.lake import Lake
from reconciler.core.metrics import Evaluation
from reconciler.core.state import FlywheelStatus, IterationRecord, ModelVersionRecord
from reconciler.runtime.reconcile import reconcile

LABELS = ["games", "mail", "science", "sound"]
NAME = "packages"
SPEC = f"specs/{NAME}.yaml"
LAKE = Path("lake") / NAME
SPEC_TEXT = """\
name: packages
task:
  mode: MULTI_CLASS
  labels: [games, mail, science, sound]
datasets:
  - {name: v1, type: TRAIN, path: data/v1.csv}
  - {name: test, type: TEST, path: data/test.csv}
promotion:
  minF1: 0.0
  minImprovement: -1.0   # every new version is promoted, and written back
  writeBack: true
"""
EXTERNAL = "external:train"  # not a failpoint: SIGKILL to the process group from outside


@dataclass(frozen=True)
class Point:
    name: str
    group: bool = True  # kill the process group (reconciler and stage), not just one process
    why: str = ""

    @property
    def id(self) -> str:
        return self.name if self.group else f"{self.name}[stage-only]"


#: Every kill point, in the order an iteration reaches them (the second iteration of the base
#: repository: it has an active model to score, a promotion to make and to write back).
POINTS: list[Point] = [
    Point("write:status#1:before-rename", why="status rewritten at the iteration's start"),
    Point("write:iteration#1:before-fsync", why="TRAINING record half-way (temp file)"),
    Point("write:iteration#1:after-rename", why="TRAINING record in place, folder not synced"),
    Point("iteration:training-recorded"),
    Point("write:pipeline#1:after-rename", why="params.yaml new, dvc.yaml still old"),
    Point("iteration:pipeline-written"),
    Point("stage:prepare:started", why="DVC holds its repository lock and rwlock"),
    Point("stage:prepare:done"),
    Point("stage:train:fitted"),
    Point("write:out#1:before-rename", why="the train stage's evaluation half-written"),
    Point("stage:train:saved", why="model saved, summary not written"),
    Point("stage:train:saved", group=False, why="the stage alone killed (OOM killer)"),
    Point("stage:train:done"),
    Point(EXTERNAL, why="kill -9 of the process group while the train stage runs"),
    Point("iteration:train-reproduced"),
    Point("write:iteration#2:before-rename", why="EVALUATING record half-way"),
    Point("iteration:evaluating-recorded"),
    Point("stage:evaluate:scored", why="active model scored, nothing written"),
    Point("stage:evaluate:scored", group=False, why="the stage alone killed"),
    Point("stage:evaluate:done"),
    Point("iteration:evaluate-reproduced"),
    Point("write:model#1:before-rename", why="a full model copy as a temp file in models/"),
    Point("write:model#1:after-rename", why="vN.skops in place, not tracked yet"),
    Point("iteration:model-copied"),
    Point("iteration:model-tracked", why="models.dvc names vN, no version record"),
    Point("write:evaluation#1:after-rename"),
    Point("iteration:trained-evaluation-written"),
    Point("iteration:active-evaluation-written"),
    Point("write:version#1:before-rename", why="version record half-way"),
    Point("iteration:version-recorded", why="completed from its records by the next reconcile"),
    Point("write:iteration#3:before-rename", why="COMPLETED record half-way"),
    Point("iteration:completed", why="decided, not promoted"),
    Point("write:status#2:before-rename", why="promotion half-written"),
    Point("iteration:promoted", why="promoted, F1 history not written"),
    Point("write:history#1:before-rename"),
    Point("writeback:pending"),
    Point("write:spec#1:before-rename", why="spec line edit half-way"),
    Point("writeback:edited", why="spec edited, not committed"),
    Point("writeback:committed", why="committed, the status still says pending"),
    Point("writeback:before-status", why="(and pushed, when asked)"),
    Point("write:status#4:before-rename", why="write-back done, not recorded"),
]


# the base repository, prepared once ------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 trained, promoted and written back; dataset v2 declared and committed."""
    top = tmp_path_factory.mktemp("crash-base")
    repo = top / "repo"
    run_cli(top, "init", str(repo))
    write_csv(repo / "data/v1.csv", bundled_rows("debian-sections", "train-v3.csv", LABELS, 10))
    write_csv(repo / "data/v2.csv",
              bundled_rows("debian-sections", "train-v3.csv", LABELS, 10, skip=10))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 5))
    (repo / SPEC).write_text(SPEC_TEXT)
    commit(repo, "Declare the packages flywheel")
    run_cli(repo, "reconcile")
    assert "activeModel: v1  # flywheel:policy" in (repo / SPEC).read_text()
    text = (repo / SPEC).read_text().replace(
        "  - {name: test", "  - {name: v2, type: TRAIN, path: data/v2.csv}\n  - {name: test")
    (repo / SPEC).write_text(text)
    commit(repo, "Add dataset v2")
    return repo


@pytest.fixture(scope="module")
def victims(base: Path, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[dict[str, Future[tuple[Path, int]]]]:
    """The killed reconciles of the selected cases, run ahead in the background.

    A killed run is a subprocess, so while one case restarts its repository in this process
    the next cases' reconcilers are already being killed: the module takes about half as long.
    """
    selected = [item.callspec.params["point"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_killed_at_a_point_then_restarted"]

    def victim(point: Point, repo: Path) -> tuple[Path, int]:
        shutil.copytree(base, repo, symlinks=True)
        return repo, kill_at(repo, point)

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {point.id: pool.submit(victim, point, tmp_path_factory.mktemp("crash") / "repo")
                   for point in selected}
        yield futures
        for future in futures.values():
            future.cancel()


# one case --------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", POINTS, ids=[p.id for p in POINTS])
def test_killed_at_a_point_then_restarted(point: Point,
                                          victims: dict[str, Future[tuple[Path, int]]]) -> None:
    repo, code = victims[point.id].result(timeout=900)
    if point.group:
        assert code == -signal.SIGKILL, f"the reconciler was not killed at {point.name}"
    else:  # the stage died alone: the reconciler records it, retryable, and says so
        assert code == 1
    check_records_parse(repo)  # the crash itself left nothing half-written
    unfinished = {r.flywheel_iteration_id for r in iterations(repo) if not r.status.terminal}

    first = reconcile(repo)  # the restart, at once: settles what the crash left
    assert first.ok, [str(e) for e in first.all_errors]
    settled = {r.flywheel_iteration_id: r for r in iterations(repo)}
    for iteration_id in unfinished:
        record = settled[iteration_id]
        assert record.status.value in ("COMPLETED", "FAILED", "STOPPED"), record
        assert record.message, record
    later = reconcile(repo, clock=lambda: time.time() + 3600)  # after any retry back-off
    assert later.ok, [str(e) for e in later.all_errors]

    age_temp_files(repo)  # a minute later, temp files a killed writer left are stale
    last = reconcile(repo)
    assert last.ok and not last.changed, "the restarts left work undone"
    check_invariants(repo)


#: Where archiving a model can meet a refused file operation (a read-only models folder, a full
#: disk): the model copied and not tracked, tracked without a version record, the record itself.
REFUSED = ["write:model#1:before-rename", "iteration:model-copied", "iteration:model-tracked",
           "write:evaluation#1:before-rename", "write:version#1:before-rename"]


@pytest.mark.parametrize("point", REFUSED)
@pytest.mark.parametrize("errno_name", ["EACCES"])
def test_a_refused_file_operation_while_archiving_is_retried(base: Path, tmp_path: Path,
                                                             point: str, errno_name: str) -> None:
    """A PermissionError at each archive step (raised by the failpoint: tests run as root, and
    root ignores chmod) fails the iteration retryably, leaves no model archived without a
    version record for good, and the retry after the back-off archives it under the same
    number: the same invariants as after a crash."""
    repo = tmp_path / "repo"
    shutil.copytree(base, repo, symlinks=True)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "FLYWHEEL_FAILPOINT": point,
           "FLYWHEEL_FAILPOINT_ACTION": f"raise:{errno_name}"}
    done = subprocess.run([FLYWHEEL, "reconcile"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert any("Permission denied" in line for line in errors), done.stderr
    (failed,) = [r for r in iterations(repo) if r.status.value == "FAILED"]
    assert failed.retryable and "Permission denied" in failed.message, failed
    assert failed.claimed_model_version == "v2"
    check_records_parse(repo)

    later = reconcile(repo, clock=lambda: time.time() + 3600)  # after the back-off
    assert later.ok, [str(e) for e in later.all_errors]
    assert reconcile(repo).ok
    age_temp_files(repo)
    last = reconcile(repo)
    assert last.ok and not last.changed
    check_invariants(repo)


def kill_at(repo: Path, point: Point) -> int:
    """Run ``flywheel reconcile`` until it dies at ``point``; its exit status."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    if point.name != EXTERNAL:
        env["FLYWHEEL_FAILPOINT"] = point.name
        if point.group:
            env["FLYWHEEL_FAILPOINT_GROUP"] = "1"
    victim = subprocess.Popen([FLYWHEEL, "reconcile"], cwd=repo, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # its own group: the kill spares pytest
    if point.name == EXTERNAL:
        logs = repo / ".flywheel/logs" / NAME
        deadline = time.monotonic() + 120
        while not any(":train'" in log.read_text(errors="replace")
                      for log in logs.glob("*T*.log")):
            assert victim.poll() is None, "the reconcile ended before the train stage"
            assert time.monotonic() < deadline, "the train stage did not start"
            time.sleep(0.05)
        time.sleep(0.3)  # well inside the stage (it takes seconds: imports, fit, save)
        os.killpg(victim.pid, signal.SIGKILL)
    code = victim.wait(timeout=300)
    deadline = time.monotonic() + 10  # SIGKILLed processes take a moment to be gone
    while survivors(victim.pid):
        assert time.monotonic() < deadline, "a process of the killed reconcile lives on"
        time.sleep(0.05)
    return code


def survivors(group: int) -> list[int]:
    """Live (not zombie, not dying) processes of a process group."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


# the invariants ----------------------------------------------------------------------------------


def iterations(repo: Path) -> list[IterationRecord]:
    return [IterationRecord.model_validate_json(p.read_text())
            for p in sorted((repo / LAKE / "iterations").glob("*.json"))]


def check_records_parse(repo: Path) -> None:
    """Every JSON file in the lake parses and validates with the project's own models."""
    for path in sorted((repo / "lake").rglob("*.json")):
        data = json.loads(path.read_text("utf-8"))
        relative = path.relative_to(repo / LAKE).parts
        if relative == ("status.json",):
            FlywheelStatus.model_validate(data)
        elif relative[0] == "iterations":
            IterationRecord.model_validate(data)
        elif relative[0] == "versions":
            ModelVersionRecord.model_validate(data)
        elif relative[0] == "evaluation":
            Evaluation.from_record(data)
        else:
            raise AssertionError(f"unexpected JSON file in the lake: {path}")
    Lake(repo).observe(NAME)  # and the lake reads as a whole (names, ids, versions checked)


def check_invariants(repo: Path) -> None:
    check_records_parse(repo)
    lake = repo / LAKE
    temp = [p for p in (repo / "lake").rglob("*") if is_temp_file(p.name)]
    assert not temp, f"temp files left: {temp}"

    # versions v1..vN, each model file as recorded, and nothing else tracked by DVC
    versions = {p.stem: ModelVersionRecord.model_validate_json(p.read_text())
                for p in (lake / "versions").glob("v*.json")}
    assert sorted(versions) == [f"v{i}" for i in range(1, len(versions) + 1)] == ["v1", "v2"]
    for version, record in versions.items():
        data = (repo / record.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record.sha256, version
        assert len(data) == record.size, version
    assert sorted(p.name for p in (lake / "models").iterdir()) == ["v1.skops", "v2.skops"]
    assert sorted(tracked_files(repo, lake / "models.dvc")) == ["v1.skops", "v2.skops"]

    # one COMPLETED iteration per input digest, each with its own version; the rest settled
    records = iterations(repo)
    completed = [r for r in records if r.status.value == "COMPLETED"]
    digests = [r.input_digest for r in completed]
    assert len(digests) == len(set(digests)) == 2, [r.status for r in records]
    assert sorted(r.trained_model_version or "" for r in completed) == sorted(versions)
    for version, record in versions.items():
        assert any(r.flywheel_iteration_id == record.flywheel_iteration_id
                   and r.trained_model_version == version for r in completed), version
    for record in records:
        assert record.status.terminal and record.message, record

    # one promotion per version, written back once, committed
    status = FlywheelStatus.model_validate_json((lake / "status.json").read_text())
    assert status.active_model == "v2" and not status.pinned
    assert [p.version for p in status.promotions] == ["v1", "v2"]
    assert status.write_back is not None and not status.write_back.pending
    assert status.write_back.version == "v2" and status.write_back.commit
    assert "activeModel: v2  # flywheel:policy" in (repo / SPEC).read_text()
    assert git(repo, "status", "--porcelain", "--", "specs") == ""
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert sum("activeModel v1 -> v2" in s for s in subjects) == 1, subjects
    assert git(repo, "log", "-1", "--format=%H", "--", SPEC) == status.write_back.commit
    assert not (repo / ".git/index.lock").exists()

    # the F1 history names every completed iteration once
    history = (lake / "f1_history.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in history] == [r.flywheel_iteration_id for r in completed]

    # DVC's own locks: `dvc status` runs (a stale lock would raise "Unable to acquire lock");
    # in this process, as the CLI would, minus a second of start-up per case
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        assert isinstance(dvc.status(), dict)


def tracked_files(repo: Path, dvc_file: Path) -> list[str]:
    """The files in a DVC-tracked folder, from its ``.dir`` manifest in the cache."""
    import yaml

    (out,) = yaml.safe_load(dvc_file.read_text())["outs"]
    digest = out["md5"]
    manifest = repo / ".dvc/cache/files/md5" / digest[:2] / digest[2:]
    return [entry["relpath"] for entry in json.loads(manifest.read_text())]


def age_temp_files(repo: Path) -> None:
    """Make the temp files in the lake look a few minutes old, as after a later restart."""
    then = time.time() - 300
    for path in (repo / "lake").rglob("*"):
        if is_temp_file(path.name):
            os.utime(path, (then, then))
