"""Stage processes die with the reconciler that started them.

DVC runs a stage's command through a shell (``$SHELL -c 'sh pipelines/run-stage.sh …'``), so
the stage's parent may be a shell, not the reconciler; a parent-death signal alone would watch
the wrong process. The reconciler therefore names itself in :data:`RECONCILER_ENV` (its pid and
its start time, so a reused pid is not mistaken for it), and the stage entry point starts a
watchdog (:func:`die_with_reconciler`): a forked child of the stage, which needs no GIL of the
stage's (a long fit in C code cannot hold it up), that SIGKILLs the stage once the reconciler is
gone, and dies itself with the stage (``PR_SET_PDEATHSIG``). A ``dvc repro`` typed by hand sets
no variable, and its stages are left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

RECONCILER_ENV = "FLYWHEEL_RECONCILER"
#: How often the watchdog looks at the reconciler (seconds).
POLL_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1


def identity(pid: int | None = None) -> str:
    """``"<pid>:<start time>"`` of a process (this one by default); the start time (clock
    ticks since boot, from ``/proc``) is empty where there is no ``/proc``."""
    pid = os.getpid() if pid is None else pid
    stat = _stat(pid)
    return f"{pid}:{stat[1] if stat else ''}"


def alive(ident: str) -> bool:
    """Is the process named by :func:`identity` still running (not a zombie, not a new process
    that was given the same pid)?"""
    pid_text, _, start = ident.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return True  # not ours to judge: never kill on a value we cannot read
    stat = _stat(pid)
    if stat is not None:
        state, started = stat
        return state not in ("Z", "X", "x") and (not start or started == start)
    if os.path.isdir("/proc"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_reconciler() -> None:
    """In a stage: end this process when the reconciler named in the environment dies.

    Does nothing without :data:`RECONCILER_ENV` (a by-hand ``dvc repro``). Exits at once when
    the reconciler is already gone. Call it before the stage starts threads (it forks).
    """
    ident = os.environ.get(RECONCILER_ENV, "").strip()
    if not ident:
        return
    if not alive(ident):
        print("error: the reconciler that started this stage is gone", file=sys.stderr)
        os._exit(1)
    reconciler_pid = ident.partition(":")[0]
    if reconciler_pid == str(os.getppid()):
        _set_parent_death_signal()  # started by the reconciler itself: the kernel watches too
    stage = os.getpid()
    try:
        child = os.fork()
    except OSError:
        return  # no process to spare: the stage runs unwatched, as before
    if child:
        return
    try:  # the watchdog: nothing of the stage's runs here, only this loop
        _set_parent_death_signal()
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
        while os.getppid() == stage:
            if not alive(ident):
                with contextlib.suppress(OSError):
                    os.kill(stage, signal.SIGKILL)
                break
            time.sleep(POLL_SECONDS)
    finally:
        os._exit(0)


def _set_parent_death_signal() -> None:
    """SIGKILL this process when its parent dies (Linux; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of ``pid`` from ``/proc/<pid>/stat``, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read(4096).decode("ascii", "replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None
