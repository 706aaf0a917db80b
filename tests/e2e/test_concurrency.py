"""Many reconcilers on one repository at once: the watch daemon plus one-shot reconciles.

Each round makes new work while ``flywheel watch`` runs, then starts five ``flywheel reconcile``
processes at the same moment (a barrier). Whatever the interleaving, the lake must end up as if
one reconciler had done the work: one iteration and one model version per input digest, records
that parse and validate, versions numbered without gaps, and nothing on any process's stderr
but our own lines (no traceback, no DVC lock message). Every process must end within a bound.

Rounds are of two kinds: *iterate* rounds add a TRAIN dataset file and list it in
the spec (a real iteration through DVC races there), and *pin* rounds only move the spec's
``activeModel`` (no DVC; the race is on ``status.json``). The daemon waits ``--settle`` seconds
after a dataset file changes, so iterate rounds alternate who gets there first: the file and the
spec written together (the one-shots, while the daemon lets the new file settle), or the file
written a settle period before the spec (the daemon's warm job, before any one-shot has started).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import FLYWHEEL, bundled_rows, write_csv
from daemon_harness import Daemon, save, spec_text

from reconciler.adapters.lake import Lake
from reconciler.core.state import FlywheelStatus, IterationRecord, ModelVersionRecord

LABELS = ["games", "mail", "science", "sound"]
SOURCE = "debian-sections"
ONE_SHOTS = 5
ROUNDS = 20
ITERATE_ROUNDS = frozenset({0, 2, 5, 7, 10, 12, 15, 17})  # 8 race real iterations; 12 pin
PROCESS_TIMEOUT = 180.0  # a one-shot queued behind an iteration waits for it, never longer
SETTLE_TIMEOUT = 120.0
FORBIDDEN = ("Traceback", "Unable to acquire lock", "lock is held")
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}  # one summary line, unwrapped
SETTLE = 4.0  # the daemon's --settle: longer than five one-shots take to start on two CPUs


@dataclass
class Outcome:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def run_at_once(repo: Path, commands: list[tuple[str, ...]]) -> list[Outcome]:
    """Start every command at the same moment (a barrier); wait for all, each with a bound."""
    barrier = threading.Barrier(len(commands))
    outcomes: list[Outcome | BaseException | None] = [None] * len(commands)

    def one(index: int, args: tuple[str, ...]) -> None:
        try:
            barrier.wait(timeout=30)
            started = time.monotonic()
            process = subprocess.Popen([FLYWHEEL, *args], cwd=repo, text=True, env=ENV,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                out, err = process.communicate(timeout=PROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
                raise AssertionError(f"`flywheel {' '.join(args)}` did not end within "
                                     f"{PROCESS_TIMEOUT:g}s (a deadlock?):\n{err}") from None
            outcomes[index] = Outcome(args, process.returncode, out, err,
                                      time.monotonic() - started)
        except BaseException as exc:  # re-raised in the test's thread below
            outcomes[index] = exc

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(commands)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PROCESS_TIMEOUT + 60)
        assert not thread.is_alive(), "a one-shot's thread never ended"
    finished: list[Outcome] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        finished.append(outcome)
    return finished


def check_clean(outcome: Outcome) -> dict[str, Any]:
    """Exit 0, nothing alarming on stderr, and an answer without errors.

    ``-o json`` answers are returned as they are; a plain one-shot's last line is its summary,
    turned into the same shape (busy, iterated, or nothing to do).
    """
    shown = f"`flywheel {' '.join(outcome.args)}` exit {outcome.code}\n{outcome.stderr}"
    assert outcome.code == 0, shown
    for text in FORBIDDEN:
        assert text not in outcome.stderr, shown
    if "json" not in outcome.args:
        summary = outcome.stderr.strip().splitlines()[-1]
        busy = summary.endswith(", 1 busy (another reconciler is on it).")
        assert busy or summary.startswith(("Nothing to do", "Reconciled: 1 iteration(s)",
                                           "Reconciled: 0 iteration(s), 1 promotion(s)")), shown
        assert ", 0 error(s)" in summary or summary.startswith("Nothing to do"), shown
        iterated = summary.startswith("Reconciled: 1 iteration(s)")
        return {"Errors": [], "Flywheels": [{"Busy": busy, "Error": None, "Promotions": [],
                                             "Iteration": {"Status": "?"} if iterated else None}]}
    answer = outcome.json()
    assert answer["Errors"] == [], shown
    for flywheel in answer["Flywheels"]:
        assert flywheel["Error"] is None, shown
        if flywheel["Busy"]:  # skipped, and said so: never an iteration of its own
            assert flywheel["Iteration"] is None and flywheel["Promotions"] == [], shown
    return answer


def check_lake(repo: Path, name: str, *, quiet: bool = False
               ) -> tuple[list[IterationRecord], FlywheelStatus]:
    """Every lake file parses and validates; one iteration and one version per input digest.

    While reconcilers may still run, a temporary file is a write in progress (its writer renames
    it in a moment); once all are ``quiet``, any left is a leak.
    """
    folder = repo / "lake" / name
    if quiet:
        leftovers = [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == [], f"temporary files left behind: {leftovers}"
    for path in folder.rglob("*.json"):
        json.loads(path.read_text("utf-8"))  # evaluations too: whole JSON, never half
    status = FlywheelStatus.model_validate_json((folder / "status.json").read_text("utf-8"))
    iterations = [IterationRecord.model_validate_json(p.read_text("utf-8"))
                  for p in sorted((folder / "iterations").glob("*.json"))]
    versions = [ModelVersionRecord.model_validate_json(p.read_text("utf-8"))
                for p in (folder / "versions").glob("v*.json")]
    Lake(repo).observe(name)  # the reconciler's own checks of names, ids and model paths

    numbers = sorted(int(v.version[1:]) for v in versions)
    assert numbers == list(range(1, len(numbers) + 1)), f"versions not contiguous: {numbers}"
    completed = [it for it in iterations if it.status.value == "COMPLETED"]
    digests = [it.input_digest for it in completed]
    assert len(digests) == len(set(digests)), "two COMPLETED iterations for one input digest"
    assert all(it.status.terminal for it in iterations), "an iteration left unfinished"
    failed = [it for it in iterations if it.status.value != "COMPLETED"]
    assert failed == [], f"iterations that did not complete: {failed}"
    digest_of = {it.flywheel_iteration_id: it.input_digest for it in iterations}
    version_digests = [digest_of[v.flywheel_iteration_id] for v in versions]
    assert len(version_digests) == len(set(version_digests)), "two versions for one digest"
    assert status.active_model in {v.version for v in versions}
    return completed, status


def wait_until(condition, what: str, timeout: float = SETTLE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not settled within {timeout:g}s: {what}"
        time.sleep(0.1)


def completed_count(repo: Path, name: str) -> int:
    count = 0
    for path in (repo / "lake" / name / "iterations").glob("*.json"):
        try:
            count += json.loads(path.read_text("utf-8"))["status"] == "COMPLETED"
        except (OSError, ValueError, KeyError):
            return -1
    return count


def status_of(repo: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((repo / "lake" / name / "status.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def check_daemon(daemon: Daemon) -> None:
    for line in daemon.lines():
        for text in FORBIDDEN:
            assert text not in line, f"the daemon logged {text!r}:\n{line}"
    assert daemon.events("error") == [], daemon.events("error")
    assert daemon.events("worker.output") == [], daemon.events("worker.output")
    for event in daemon.events("job.finished"):
        assert event["exit"] == 0, event
    for event in daemon.events("iteration.finished"):
        assert event["status"] == "COMPLETED", event


def train_file(repo: Path, index: int) -> str:
    rows = bundled_rows(SOURCE, "train-v3.csv", LABELS, 3, skip=10 + 3 * index)
    write_csv(repo / f"data/extra{index}.csv", rows)
    return f"extra{index}"


@pytest.fixture
def tiny(repo: Path) -> Path:
    write_csv(repo / "data/base.csv", bundled_rows(SOURCE, "train-v3.csv", LABELS, 10))
    write_csv(repo / "data/test.csv", bundled_rows(SOURCE, "test.csv", LABELS, 6))
    return repo


def datasets(*train: str) -> list[tuple[str, str, str]]:
    return [*((t, "TRAIN", f"data/{t}.csv") for t in train), ("test", "TEST", "data/test.csv")]


def test_the_daemon_and_five_one_shots_race_without_harm(tiny: Path) -> None:
    repo, name = tiny, "alpha"
    train = ["base"]
    pin: str | None = None

    def write_spec() -> None:
        extra = {"activeModel": pin} if pin else {}
        save(repo / f"specs/{name}.yaml", spec_text(name, LABELS, datasets(*train), **extra))

    write_spec()
    daemon = Daemon(repo, "--settle", str(SETTLE))
    try:
        wait_until(lambda: status_of(repo, name).get("activeModel") == "v1", "first model")
        expected = 1
        kinds = {"iterate": 0, "pin": 0}
        iterated_by_one_shot = busy_seen = 0
        for round_ in range(ROUNDS):
            if round_ in ITERATE_ROUNDS:
                kind = "iterate"
                train.append(train_file(repo, round_))
                if kinds["iterate"] % 2:  # the daemon first: the new file has settled already
                    time.sleep(SETTLE + 0.5)
                expected += 1
            else:
                kind = "pin"
                active = status_of(repo, name)["activeModel"]
                pin = "v1" if active != "v1" else f"v{expected}"
            kinds[kind] += 1
            write_spec()
            # Four answer in JSON, one in words: a busy flywheel is said so either way.
            commands = [("reconcile", "-o", "json", name)] * (ONE_SHOTS - 1)
            outcomes = run_at_once(repo, [*commands, ("reconcile", name)])
            answers = [check_clean(o) for o in outcomes]
            iterations = [f["Iteration"] for a in answers for f in a["Flywheels"]
                          if f["Iteration"]]
            assert len(iterations) <= 1, f"round {round_}: {len(iterations)} one-shots iterated"
            iterated_by_one_shot += len(iterations)
            busy = sum(f["Busy"] for a in answers for f in a["Flywheels"])
            busy_seen += busy
            if kind == "iterate":  # an iteration takes seconds: the others find it busy
                assert busy >= 1, f"round {round_}: no one-shot found the flywheel busy"
            if kind == "iterate":
                wait_until(lambda n=expected: completed_count(repo, name) == n,
                           f"round {round_}: iteration {expected}")
            else:
                wait_until(lambda v=pin: status_of(repo, name).get("activeModel") == v,
                           f"round {round_}: pin {pin}")
            completed, status = check_lake(repo, name)
            assert len(completed) == expected, f"round {round_}: {len(completed)} iterations"
            if kind == "pin":
                assert status.pinned and status.active_model == pin
            else:
                newest = max(completed, key=lambda it: it.creation_time)
                assert f"data/{train[-1]}.csv" in {d.path for d in newest.datasets}
        assert kinds == {"iterate": 8, "pin": 12}
        by_daemon = len(daemon.events("iteration.finished"))
        print(f"rounds {kinds}; one-shots iterated {iterated_by_one_shot}, turned away busy "
              f"{busy_seen}; the daemon iterated {by_daemon} (1 on start-up)")
        # Both sides won some races: the one-shots raced each other and the daemon, and lost.
        assert iterated_by_one_shot >= 1 and by_daemon >= 2
        assert iterated_by_one_shot + by_daemon == 1 + kinds["iterate"]
        time.sleep(1.0)  # let a last daemon job end, then nothing may have gone wrong anywhere
        check_daemon(daemon)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    check_daemon(daemon)
    check_lake(repo, name, quiet=True)


def test_two_flywheels_iterate_at_once_and_dvc_calls_queue(tiny: Path) -> None:
    """Two one-shots on two flywheels both need DVC at the same moment: one waits, none fails."""
    repo = tiny
    for round_ in range(2):
        train = ["base", *(f"extra{i}" for i in range(round_))]
        if round_:
            train_file(repo, round_ - 1)
        for name in ("alpha", "beta"):
            save(repo / f"specs/{name}.yaml", spec_text(name, LABELS, datasets(*train)))
        outcomes = run_at_once(repo, [("reconcile", "-o", "json", "alpha"),
                                      ("reconcile", "-o", "json", "beta")])
        for outcome in outcomes:
            answer = check_clean(outcome)
            (flywheel,) = answer["Flywheels"]
            assert flywheel["Iteration"] is not None, outcome.stderr
            assert flywheel["Iteration"]["Status"] == "COMPLETED"
        for name in ("alpha", "beta"):
            completed, _ = check_lake(repo, name, quiet=True)
            assert len(completed) == round_ + 1
