"""A real ``flywheel serve`` for tests: the console script in a subprocess on a free loopback
port, over a real git + DVC repository with one reconciled flywheel, and real boto3 clients.

    from api_harness import ApiServer, reconciled_repo, client

Nothing is mocked: requests go over HTTP to uvicorn, writes become git commits, iterations run
in the watch daemon the server starts (unless ``watch=False``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from conftest import FLYWHEEL, bundled_rows, commit, git, run_cli, write_csv

READY_TIMEOUT = 30.0
LABELS = ("database", "games", "mail", "sound")
ARN = "arn:aws:comprehend:local:000000000000:"
SPEC = """\
# A small flywheel of the bundled Debian sections data (see data/README.md).
apiVersion: flywheel-reconciler/v1
name: sections
task:
  mode: MULTI_CLASS
  labels: [database, games, mail, sound]
datasets:
  - name: train-1
    type: TRAIN
    path: data/sections/train-1.csv
  - name: test
    type: TEST
    path: data/sections/test.csv
recipe:
  algorithm: complement-nb
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train_rows(per_label: int, skip: int = 0) -> list[tuple[str, str]]:
    return bundled_rows("debian-sections", "train-v1.csv", LABELS, per_label, skip)


def test_rows(per_label: int) -> list[tuple[str, str]]:
    return bundled_rows("debian-sections", "test.csv", LABELS, per_label)


def reconciled_repo(root: Path) -> Path:
    """A repository with flywheel ``sections`` (one completed iteration, v1 trained) committed."""
    run_cli(root.parent, "init", str(root))
    write_csv(root / "data/sections/train-1.csv", train_rows(15))
    write_csv(root / "data/sections/test.csv", test_rows(8))
    (root / "specs/sections.yaml").write_text(SPEC, "utf-8")
    commit(root, "the sections flywheel")
    run_cli(root, "reconcile")
    commit(root, "the first iteration's records")
    return root


def incoming(root: Path, name: str, rows: list[tuple[str, str]]) -> str:
    """A CSV under data/incoming/ (an allowed local folder), as a client would upload."""
    path = write_csv(root / "data/incoming" / name, rows)
    return path.relative_to(root).as_posix()


class ApiServer:
    """``flywheel serve`` on a free port; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, root: Path, *, watch: bool = True, extra: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.log = root.parent / f"serve-{self.port}.log"
        args = [FLYWHEEL, "-C", str(root), "serve", "--port", str(self.port),
                "--log-format", "json", *extra]
        if not watch:
            args.append("--no-watch")
        self._log = self.log.open("wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})})
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flywheel serve exited {self.process.returncode}:\n"
                                     + self.log.read_text("utf-8", "replace"))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("flywheel serve did not listen in time:\n"
                             + self.log.read_text("utf-8", "replace"))

    def client(self, **config: Any) -> Any:
        return client(self.url, **config)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client(url: str, *, access_key: str = "AKIDEXAMPLE", secret_key: str = "secret",
           **config: Any) -> Any:
    """A real boto3 Comprehend client pointed at ``url`` (standard retries off: a test sees
    each answer as the server gave it)."""
    return boto3.client("comprehend", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                        config=Config(retries={"max_attempts": 1}, **config))


def aws(url: str, *args: str,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real aws CLI (from the package registry, next to this Python)."""
    binary = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    base = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": ""}
    return subprocess.run([binary, "comprehend", *args, "--endpoint-url", url],
                          capture_output=True, text=True,
                          env={**os.environ, **base, **(env or {})}, timeout=120)


def wait_for(predicate: Any, timeout: float = 120.0, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout}s")


def commits(root: Path) -> list[str]:
    return git(root, "log", "--format=%s").splitlines()


__all__ = ["ARN", "FLYWHEEL", "ApiServer", "aws", "client", "commits", "incoming",
           "reconciled_repo", "test_rows", "train_rows", "wait_for"]
