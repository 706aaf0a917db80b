"""A real Dask cluster on loopback for tests: ``dask scheduler`` and ``dask worker`` processes.

Workers run with ``--no-nanny`` (a killed worker stays dead, as a lost machine does) and in a
folder of their own, outside the repository: they get no checkout. Each worker may be given its
own environment (a failpoint, the exchange store's AWS variables)::

    with LocalDask(tmp_path, env=s3.env()) as cluster:
        cluster.worker("a")
        cluster.wait_for_workers(1)
        cluster.url  # dask://127.0.0.1:PORT, for --executor
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from s3_server import free_port

DASK = Path(sys.executable).with_name("dask")
READY_TIMEOUT = 30.0


class LocalDask:
    def __init__(self, base: Path, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.port = port or free_port()
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"dask://127.0.0.1:{self.port}"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        folder = self.base / name
        folder.mkdir(exist_ok=True)
        with (self.base / f"{name}.log").open("ab") as log:
            return subprocess.Popen([str(DASK), *args], cwd=folder, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn("scheduler", [
            "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard",
            "--no-show"], self.env)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise AssertionError(f"dask scheduler exited:\n{self.log('scheduler')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"dask scheduler not listening:\n{self.log('scheduler')}")

    def worker(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        process = self._spawn(f"worker-{name}", [
            "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
            "--no-dashboard", "--host", "127.0.0.1"], {**self.env, **(env or {})})
        self.workers[name] = process
        return process

    def wait_for_workers(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=READY_TIMEOUT) as client:
            client.wait_for_workers(count, timeout=READY_TIMEOUT)

    def log(self, name: str) -> str:
        try:
            return (self.base / f"{name}.log").read_text("utf-8", errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def kill(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def close(self) -> None:
        for process in self.workers.values():
            self.kill(process)
        self.kill(self.scheduler)

    def __enter__(self) -> LocalDask:
        self.start_scheduler()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def stopped(process: subprocess.Popen[bytes], timeout: float = 120.0) -> bool:
    """Wait until ``process`` stopped itself (SIGSTOP: state ``T`` in /proc); False if it
    did not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state == "T":
            return True
        time.sleep(0.1)
    return False
