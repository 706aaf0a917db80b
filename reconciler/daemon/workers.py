"""Worker processes: each job is ``flywheel reconcile NAME --log-format json`` in a child process.

Why a process per job rather than a thread: the daemon stays small while idle (scikit-learn and
DVC are imported only by the children, and their memory goes back to the system when a job
ends); a job can be asked to stop with a signal, and cut short or killed as a last resort,
without harming the daemon; and the child runs exactly the ``reconcile()`` of the one-shot
command. Each child gets its own process group so that a Ctrl-C at the daemon's terminal reaches
the daemon only; the daemon decides how its children stop.

A worker is started *before* it is needed (``--names-from-stdin``): it imports everything and
waits for a flywheel name, so a job starts in milliseconds instead of the ~0.4 s a Python process
with pydantic, YAML and rich takes to start. Closing its stdin without a name ends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.adapters import jsonio
from reconciler.daemon.dispatch import JobKind

Fields = dict[str, Any]

#: Exit statuses of ``flywheel reconcile`` that are outcomes, not crashes.
EXPECTED_EXITS = frozenset({0, 1, 130})


class Worker:
    """A warm child process that, once assigned, does one job for one flywheel.

    The child's event lines are passed to ``emit``; ``on_exit`` is called (from the reader
    thread) when it ends, assigned or not.
    """

    def __init__(self, root: Path, *, emit: Callable[[Fields], None],
                 on_change: Callable[[Worker], None], on_exit: Callable[[Worker], None],
                 extra_args: list[str] | None = None) -> None:
        self.root = root
        self.emit, self.on_change, self.on_exit = emit, on_change, on_exit
        self.name = ""
        self.kind: JobKind | None = None  # set with the name
        self.started = time.time()
        self.iteration_id: str | None = None
        self.stage: str | None = None
        self.summary: Fields | None = None
        self.returncode: int | None = None
        self.stop_sent = False
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "-C", str(root), "reconcile",
             "--log-format", "json", "--names-from-stdin", *(extra_args or [])],
            cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        threading.Thread(target=self._read, name="worker", daemon=True).start()

    @property
    def assigned(self) -> bool:
        return bool(self.name)

    def assign(self, name: str, kind: JobKind) -> bool:
        """Give the waiting child its flywheel; False if the child is gone."""
        self.name, self.kind, self.started = name, kind, time.time()
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(f"{name}\n".encode())
            self.process.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            return False
        return True

    def discard(self) -> None:
        """End an unassigned child: no name on its stdin means nothing to do."""
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.returncode is None

    @property
    def failed(self) -> bool:
        """The job ended without doing its flywheel's work (a failure or a crash)."""
        if self.returncode not in EXPECTED_EXITS:
            return True
        return self.name in (self.summary or {}).get("failed", [])

    @property
    def busy_elsewhere(self) -> bool:
        """Another reconciler held the flywheel, so this job did nothing."""
        return self.name in (self.summary or {}).get("busy", [])

    def request_stop(self) -> None:
        """SIGTERM: the running stage finishes, the iteration is recorded STOPPED."""
        self.stop_sent = True
        self._signal(signal.SIGTERM, group=False)

    def interrupt(self) -> None:
        """SIGINT to the whole job, stage command included: stop now (still recorded)."""
        self._signal(signal.SIGINT, group=True)

    def kill(self) -> None:
        """SIGKILL to the whole job: the next reconcile marks the iteration FAILED, retryable."""
        self._signal(signal.SIGKILL, group=True)

    def _signal(self, sig: signal.Signals, *, group: bool) -> None:
        if not self.running:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._line(line)
        self.returncode = self.process.wait()
        self.on_exit(self)

    def _line(self, line: str) -> None:
        fields = _parse(line)
        if fields is None:  # not one of our event lines: a crash's traceback, a warning
            self.emit({"event": "worker.output", "flywheel": self.name or "-", "line": line})
            return
        event = fields.get("event")
        if event == "reconcile.finished":
            self.summary = fields
            return
        if event == "error" and fields.get("flywheel") in (None, "-"):
            return  # another spec file failed to load: the daemon's own pass reports it once
        if event == "iteration.started":
            self.iteration_id = fields.get("iteration")
        elif event == "stage.started":
            self.stage = fields.get("stage")
        elif event == "iteration.finished":
            self.stage = None
        self.emit(fields)
        if event in ("iteration.started", "stage.started", "iteration.finished"):
            self.on_change(self)

    def describe(self) -> Fields:
        """What the job is doing, for the status file."""
        return {"FlywheelName": self.name, "Kind": self.kind, "Pid": self.pid,
                "StartTime": round(self.started, 3), "FlywheelIterationId": self.iteration_id,
                "Stage": self.stage, "StopRequested": self.stop_sent}


def _parse(line: str) -> Fields | None:
    if not line.startswith("{"):
        return None
    try:
        fields = jsonio.loads(line)  # bounded, like every JSON the project reads
    except ValueError:
        return None
    return fields if isinstance(fields, dict) and "event" in fields else None
