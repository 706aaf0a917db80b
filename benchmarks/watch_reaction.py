"""How fast does ``flywheel watch`` react to a spec save, and how small is it while idle?

Reaction: the daemon (default options) serves a scratch repository with one small flywheel.
Each of ``--edits`` spec saves (editor-style: write a scratch file, rename it over the spec)
changes the recipe's ``C``, so every save needs a new iteration. Measured from the rename to the
``iteration.started`` line of the job the daemon starts, with a breakdown: save -> ``changed``
(inotify + debounce), -> ``job.started`` (the pass), -> ``iteration.started`` (the child process
starts, plans again under the flywheel lock, checks the data, writes the TRAINING record). The
next save waits until the daemon is idle again.

Baseline, same run and repository, daemon stopped: a one-shot ``flywheel reconcile`` for the same
kind of edit, from spawning the process to its ``iteration.started`` line (what a git hook or a
hand-run command gets).

Idle RSS: the resident memory (``/proc/PID/status`` VmRSS) of the daemon and of the warm worker
it keeps waiting, after all the edits, once it is idle, next to a bare ``python -c`` that sleeps
(the interpreter's own floor). The target is met only if the two together stay under it.

    .venv/bin/python benchmarks/watch_reaction.py [--edits 24]
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import (
    FLYWHEEL,
    PROJECT,
    PYTHON,
    check_environment,
    environment,
    init_repository,
    machine_note,
)

LABELS = ["games", "mail", "science", "sound"]
REACTION_TARGET = 1.0
RSS_TARGET_MB = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=24, help="spec saves to time (>= 20)")
    parser.add_argument("--baseline-runs", type=int, default=5)
    args = parser.parse_args()
    check_environment()
    print(machine_note())
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as scratch:
        repo = Path(scratch) / "repo"
        repo.mkdir()
        init_repository(repo)
        write_data(repo)
        save_spec(repo, 1.0)
        reactions, rss = measure_daemon(repo, args.edits)
        baseline = measure_one_shot(repo, args.baseline_runs)
    floor = bare_python_rss()
    report(reactions, baseline, rss, floor)


# setup --------------------------------------------------------------------------------------


def write_data(repo: Path) -> None:
    import csv

    def rows(source: str, per_label: int) -> list[list[str]]:
        taken: dict[str, int] = {}
        out = []
        path = PROJECT / "data/debian-sections" / source
        with path.open(encoding="utf-8", newline="") as handle:
            for label, text in csv.reader(handle):
                if label in LABELS and taken.get(label, 0) < per_label:
                    taken[label] = taken.get(label, 0) + 1
                    out.append([label, text])
        return out

    for name, source, per_label in (("train", "train-v3.csv", 40), ("test", "test.csv", 15)):
        with (repo / "data" / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows(source, per_label))


def save_spec(repo: Path, c: float) -> float:
    """Save the spec editor-style; the wall-clock time of the rename."""
    text = (f"name: bench\ntask:\n  mode: MULTI_CLASS\n  labels: [{', '.join(LABELS)}]\n"
            "datasets:\n  - {name: train, type: TRAIN, path: data/train.csv}\n"
            "  - {name: test, type: TEST, path: data/test.csv}\n"
            f"recipe:\n  C: {c}\npromotion:\n  minF1: 0.0\n")
    scratch = repo / "specs/.bench.yaml.swp"
    scratch.write_text(text, "utf-8")
    os.replace(scratch, repo / "specs/bench.yaml")
    return time.time()


# the daemon ---------------------------------------------------------------------------------


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self) -> list[dict]:
        out = []
        for line in self.path.read_text("utf-8").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait(self, predicate, count: int, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events() if predicate(e)]
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.01)
        raise RuntimeError(f"timed out; log:\n{self.path.read_text()}")


def stamp(event: dict) -> float:
    """The wall-clock seconds of a log line's ``ts`` (UTC, milliseconds)."""
    whole, _, millis = event["ts"].rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000


def measure_daemon(repo: Path,
                   edits: int) -> tuple[dict[str, list[float]], tuple[float, float, int]]:
    log = Log(repo.parent / "watch.log")
    with log.path.open("wb") as sink:
        daemon = subprocess.Popen([FLYWHEEL, "watch", "--log-format", "json"], cwd=repo,
                                  env=environment(), stdout=subprocess.DEVNULL, stderr=sink)
    try:
        ended = 1
        log.wait(lambda e: e["event"] == "pass" and e["trigger"] == "job ended: bench", ended)
        parts: dict[str, list[float]] = {"changed": [], "job": [], "started": []}
        for i in range(1, edits + 1):
            saved = save_spec(repo, 1.0 + i / 100)
            changed = log.wait(lambda e: e["event"] == "changed", i)
            job = log.wait(lambda e: e["event"] == "job.started", i + 1)
            started = log.wait(lambda e: e["event"] == "iteration.started", i + 1)
            parts["changed"].append(stamp(changed) - saved)
            parts["job"].append(stamp(job) - saved)
            parts["started"].append(stamp(started) - saved)
            ended += 1
            log.wait(lambda e: e["event"] == "pass" and e["trigger"] == "job ended: bench",
                     ended)
            print(f"  edit {i:2d}: iteration started {parts['started'][-1]:.3f} s after the save",
                  flush=True)
        time.sleep(2.0)  # idle: no job, no pass in flight
        children = subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True,
                                  text=True).stdout.split()
        rss = (rss_mb(daemon.pid), sum(rss_mb(int(pid)) for pid in children), len(children))
    finally:
        daemon.terminate()
        daemon.wait(timeout=120)
    return parts, rss


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def bare_python_rss() -> float:
    sleeper = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(1.0)
        return rss_mb(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


# the one-shot baseline ----------------------------------------------------------------------


def measure_one_shot(repo: Path, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        save_spec(repo, 5.0 + i / 100)
        log = repo.parent / f"one-shot-{i}.log"
        with log.open("wb") as sink:
            spawned = time.time()
            job = subprocess.Popen([FLYWHEEL, "reconcile", "--log-format", "json"], cwd=repo,
                                   env=environment(), stdout=subprocess.DEVNULL, stderr=sink)
            job.wait(timeout=600)
        started = [e for e in Log(log).events() if e["event"] == "iteration.started"]
        samples.append(stamp(started[0]) - spawned)
    return samples


# report -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def report(parts: dict[str, list[float]], baseline: list[float],
           rss: tuple[float, float, int], floor: float) -> None:
    started = parts["started"]
    p50, p95 = statistics.median(started), percentile(started, 95)
    print(f"\nspec save -> iteration started, {len(started)} edits (flywheel watch, defaults):")
    for key, label in (("changed", "save -> changed (inotify + 0.25 s debounce)"),
                       ("job", "save -> job.started (the pass)"),
                       ("started", "save -> iteration.started")):
        print(f"  {label:45s} p50 {statistics.median(parts[key]):.3f} s  "
              f"p95 {percentile(parts[key], 95):.3f} s  max {max(parts[key]):.3f} s")
    verdict = "meets" if p95 <= REACTION_TARGET else "MISSES"
    print(f"  -> p95 {p95:.3f} s {verdict} the target <= {REACTION_TARGET:g} s")
    one_shot = statistics.median(baseline)
    print(f"baseline, one-shot `flywheel reconcile` spawn -> iteration started: median "
          f"{one_shot:.3f} s (n={len(baseline)})")
    print(f"  ratio daemon p50 (from the save) / one-shot median (from the spawn): "
          f"{p50 / one_shot:.3f}x")
    daemon, children, count = rss
    verdict = "meets" if daemon + children <= RSS_TARGET_MB else "MISSES"
    print(f"idle RSS: daemon {daemon:.1f} MB + {count} warm worker(s) {children:.1f} MB = "
          f"{daemon + children:.1f} MB ({verdict} the target <= {RSS_TARGET_MB:g} MB, counting "
          f"both); bare python interpreter {floor:.1f} MB; daemon/bare {daemon / floor:.2f}x")


if __name__ == "__main__":
    main()
