"""A ``flywheel watch`` daemon as a real subprocess, and ways to wait on what it logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from conftest import FLYWHEEL

Event = dict[str, Any]


class Daemon:
    """``flywheel watch --log-format json`` on ``repo``; its log lines are read from a file."""

    def __init__(self, repo: Path, *args: str, log: Path | None = None) -> None:
        self.repo = repo
        self.log = log or repo.parent / f"watch-{time.monotonic_ns()}.log"
        env = {**os.environ, "NO_COLOR": "1"}
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [FLYWHEEL, "watch", "--log-format", "json", "--debounce", "0.1", "--settle",
                 "0.2", *args], cwd=repo, stdout=subprocess.DEVNULL, stderr=sink, env=env)

    def lines(self) -> list[str]:
        return self.log.read_text("utf-8", errors="replace").splitlines()

    def events(self, kind: str | None = None, **match: Any) -> list[Event]:
        found = []
        for line in self.lines():
            event = json.loads(line)  # every line the daemon writes is JSON: this checks it
            if kind is not None and event.get("event") != kind:
                continue
            if all(event.get(k) == v for k, v in match.items()):
                found.append(event)
        return found

    def wait_for(self, kind: str, *, count: int = 1, timeout: float = 120,
                 where: Callable[[Event], bool] = lambda e: True, **match: Any) -> Event:
        """Poll the log until ``count`` matching events exist; return the last of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events(kind, **match) if where(e)]
            if len(found) >= count:
                return found[count - 1]
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.process.returncode}) before "
                                     f"{kind} {match}:\n" + "\n".join(self.lines()))
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} {match} within {timeout}s:\n"
                                     + "\n".join(self.lines()))
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 90) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def save(path: Path, text: str) -> None:
    """Save the way editors do: write a scratch file next to it, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.swp")
    scratch.write_text(text, "utf-8")
    os.replace(scratch, path)


def spec_text(name: str, labels: list[str], datasets: list[tuple[str, str, str]],
              **extra: Any) -> str:
    spec = {
        "name": name,
        "task": {"mode": "MULTI_CLASS", "labels": labels},
        "datasets": [{"name": n, "type": t, "path": p} for n, t, p in datasets],
        "promotion": {"minF1": 0.0},
        **extra,
    }
    return yaml.safe_dump(spec, sort_keys=False)


def lake_json(repo: Path, *parts: str) -> Any:
    return json.loads(repo.joinpath("lake", *parts).read_text("utf-8"))


def iteration_records(repo: Path, name: str) -> list[Event]:
    folder = repo / "lake" / name / "iterations"
    return [json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("*.json"))]
