"""What wakes the watch daemon: the path filter, the debounce, and real inotify events."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from watchdog.observers import Observer

from reconciler.daemon.triggers import ChangeFilter, ChangeHandler, Trigger

ROOT = Path("/repo")


@pytest.mark.parametrize(("path", "expected"), [
    ("specs/a.yaml", "specs/a.yaml"),
    ("specs/team/b.yml", "specs/team/b.yml"),
    ("specs/team", "specs/team"),  # a folder moved in or out
    ("specs", "specs"),
    ("data", "data"),
    ("data/v3/train.csv", "data/v3/train.csv"),
    ("data/train", "data/train"),
    ("specs/.a.yaml.swp", None),
    ("specs/a.yaml~", None),
    ("specs/4913", None),
    ("specs/.hidden/a.yaml", None),
    ("specs/README.md", None),
    ("data/.train.csv.tmp", None),
    ("data/.~lock.train.csv#", None),
    ("data/train.csv.part", None),
    ("lake/alpha/status.json", None),
    ("pipelines/alpha/dvc.lock", None),
    (".flywheel/watch/status.json", None),
    (".git/index", None),
    ("dvc.yaml", None),
    (".flywheel/requests/alpha", ".flywheel/requests/alpha"),  # flywheel iterate alpha
    (".flywheel/requests/.alpha.x1.tmp", None),
], ids=lambda value: str(value))
def test_only_what_a_reconcile_reads_is_relevant(path: str, expected: str | None) -> None:
    assert ChangeFilter(ROOT).relevant(str(ROOT / path)) == expected


def test_paths_outside_the_repository_are_ignored() -> None:
    assert ChangeFilter(ROOT).relevant("/elsewhere/specs/a.yaml") is None


def test_a_burst_of_changes_is_one_wake_after_the_quiet_time() -> None:
    trigger = Trigger(quiet=0.15, max_delay=10)

    def burst() -> None:
        for i in range(200):
            trigger.changed(f"data/part-{i % 7}.csv")
            time.sleep(0.0005)

    writer = threading.Thread(target=burst)
    started = time.monotonic()
    writer.start()
    wake = trigger.wait(deadline=started + 10)
    writer.join()
    assert wake.burst is not None and wake.burst.count == 200
    assert sorted(wake.burst.paths) == sorted(f"data/part-{i}.csv" for i in range(7))
    assert time.monotonic() - wake.burst.last >= 0.15 - 0.01
    assert trigger.wait(deadline=time.monotonic() + 0.3).timed_out


def test_a_never_ending_stream_still_wakes_after_max_delay() -> None:
    trigger = Trigger(quiet=0.2, max_delay=0.4)
    done = threading.Event()

    def stream() -> None:
        while not done.is_set():
            trigger.changed("data/growing.csv")
            time.sleep(0.02)

    writer = threading.Thread(target=stream)
    started = time.monotonic()
    writer.start()
    try:
        wake = trigger.wait(deadline=started + 5)
    finally:
        done.set()
        writer.join()
    assert wake.burst is not None and wake.burst.count > 5
    assert 0.35 <= time.monotonic() - started < 2.0


def test_a_poke_wakes_at_once_and_a_deadline_times_out() -> None:
    trigger = Trigger(quiet=5, max_delay=10)
    threading.Timer(0.05, trigger.poke, args=("job ended: alpha",)).start()
    started = time.monotonic()
    wake = trigger.wait(deadline=started + 5)
    assert wake.pokes == ("job ended: alpha",) and wake.burst is None
    assert time.monotonic() - started < 1.0
    assert trigger.wait(deadline=time.monotonic() + 0.1).timed_out


@pytest.fixture
def watched(tmp_path: Path):
    """A real watchdog observer on a repository-shaped folder, feeding a Trigger."""
    for folder in ("specs", "data", "lake/alpha", ".flywheel", "pipelines/alpha"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "specs/alpha.yaml").write_text("name: alpha\n")
    trigger = Trigger(quiet=0.1, max_delay=2)
    handler = ChangeHandler(ChangeFilter(tmp_path), trigger)
    observer = Observer()
    observer.schedule(handler, str(tmp_path), recursive=False)
    for folder in ("specs", "data"):
        observer.schedule(handler, str(tmp_path / folder), recursive=True)
    observer.start()
    yield tmp_path, trigger
    observer.stop()
    observer.join()


def test_an_editor_save_is_seen_as_the_spec_changing(watched) -> None:
    root, trigger = watched
    temp = root / "specs/.alpha.yaml.swp"
    temp.write_text("name: alpha\ndescription: edited\n")
    os.replace(temp, root / "specs/alpha.yaml")
    wake = trigger.wait(deadline=time.monotonic() + 5)
    assert wake.burst is not None and wake.burst.paths == ["specs/alpha.yaml"]


def test_copying_a_dataset_folder_is_one_wake(watched) -> None:
    root, trigger = watched
    staging = root / "staging"
    staging.mkdir()
    for i in range(30):
        (staging / f"part-{i}.csv").write_text("games,some text\n")
    os.replace(staging, root / "data/v2")
    (root / "data/v3").mkdir()
    for i in range(30):
        (root / "data/v3" / f"part-{i}.csv").write_text("games,some text\n")
    wake = trigger.wait(deadline=time.monotonic() + 5)
    assert wake.burst is not None
    assert wake.burst.paths[0] == "data/v2"
    # Both copies, every file (the log keeps the first few paths, the count is complete).
    assert wake.burst.count >= 61 and len(wake.burst.paths) == wake.burst.KEEP
    assert trigger.wait(deadline=time.monotonic() + 0.5).timed_out


def test_the_daemons_own_writes_and_reads_do_not_wake_it(watched) -> None:
    root, trigger = watched
    (root / "lake/alpha/status.json").write_text("{}")
    (root / ".flywheel/hashes.json").write_text("{}")
    (root / "pipelines/alpha/dvc.lock").write_text("schema: '2.0'\n")
    (root / "dvc.yaml").write_text("stages: {}\n")
    (root / "specs/alpha.yaml").read_text()  # reconciles read specs and data: not a change
    (root / "data/.train.csv.tmp").write_text("scratch")
    assert trigger.wait(deadline=time.monotonic() + 0.6).timed_out
