"""Graceful stops on SIGTERM and SIGINT, shared by the one-shot reconcile and the watch daemon.

The first signal *asks* for a stop: the stage that is running finishes, nothing new starts, and
an unfinished iteration is recorded as STOPPED; the next reconcile resumes it, and DVC skips the
stages that already finished. A second signal stops at once (``KeyboardInterrupt``), which still
records the iteration as STOPPED. This is what CI runners (SIGTERM on cancel, then SIGKILL after a
grace period) and service managers expect.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

from reconciler.errors import Stopped

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """A thread-safe "please stop" flag that remembers why it was raised."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def check(self, before: str) -> None:
        """Raise :class:`Stopped` if a stop was asked for; ``before`` names the work skipped."""
        if self._event.is_set():
            raise Stopped(f"stopped before {before} ({self.reason})")


NEVER = StopRequest()  # the request nobody raises, for callers that cannot be stopped


@contextlib.contextmanager
def graceful_signals(stop: StopRequest, *, force: Callable[[str], None] | None = None,
                     notice: str | None = None,
                     wake: Callable[[str], None] | None = None) -> Iterator[None]:
    """While inside, SIGTERM/SIGINT raise ``stop``; a second signal calls ``force``.

    ``force`` defaults to raising ``KeyboardInterrupt`` (stop now). ``notice`` is written to
    stderr on the first signal; ``wake("signal")`` is called on every signal, after the flag is
    set, so a loop blocked on a condition notices. Outside the main thread this does nothing
    (Python only delivers signals there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if not stop.is_set():
            stop.set(f"{name} received")
            if notice:
                with contextlib.suppress(OSError):
                    os.write(2, f"{name}: {notice}\n".encode())
        elif force is None:
            raise KeyboardInterrupt(name)
        else:
            force(name)
        if wake is not None:
            wake("signal")

    previous = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
