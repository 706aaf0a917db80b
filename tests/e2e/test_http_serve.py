"""`flywheel serve` as a process: the watch daemon it starts lives exactly as long as it does,
whether the server is stopped (SIGTERM) or killed (SIGKILL); an idle server answers a ping."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from api_harness import ApiServer
from conftest import run_cli


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_the_daemon_beside_the_server_ends_with_it(tmp_path: Path, how: int) -> None:
    root = tmp_path / "repo"
    run_cli(tmp_path, "init", str(root))
    server = ApiServer(root)
    try:
        with urllib.request.urlopen(f"{server.url}/ping", timeout=10) as answer:
            assert answer.read() == b"ok\n"
        daemons = children(server.process.pid)
        assert len(daemons) == 1, daemons
        os.kill(server.process.pid, how)
        server.process.wait(timeout=60)
        assert wait_gone(daemons[0]), "the watch daemon outlived its server"
        if how == signal.SIGTERM:
            assert server.process.returncode == 0
    finally:
        server.stop()
