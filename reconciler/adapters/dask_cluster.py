"""The only module that talks to Dask ``distributed``: a client of a running scheduler.

Imported only when a cluster executor is used (``--executor dask://HOST:PORT``). Every failure
of the cluster becomes one of our errors with one line: a scheduler that cannot be reached or is
lost mid-run is a :class:`~reconciler.errors.TransientError` (the iteration is FAILED and
retried after the back-off, never left running); a task's own error is re-raised as the worker
raised it (our errors travel intact). ``distributed`` logs its own reconnection attempts with
tracebacks; they go to the log, not the user's terminal (:func:`quiet`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from reconciler.errors import FlywheelError, Stopped, TransientError

#: How long connecting to the scheduler may take, and how long a task may wait for a worker
#: to appear (seconds).
CONNECT_TIMEOUT = 10.0
#: After a failed connection, how long before trying again (seconds).
RECONNECT_AFTER = 30.0
#: How often a wait for a task's result looks at the stop request (seconds).
POLL_SECONDS = 0.25


def quiet() -> None:
    """Keep ``distributed``'s own log lines (reconnect tracebacks) off the terminal, and its
    warning that a task carries megabytes: documents and models travel in the task on purpose
    when no exchange store is given (``--exchange`` is the way for big ones)."""
    warnings.filterwarnings("ignore", message="Large object of size", category=UserWarning)
    for name in ("distributed", "distributed.client", "distributed.comm",
                 "distributed.batched"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class DaskCluster:
    """A connection to the scheduler at ``address`` (``tcp://HOST:PORT``), opened on first use
    and opened again after it was lost (thread-safe: iterations of a reconcile share it)."""

    def __init__(self, address: str, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._lock = threading.Lock()
        #: The last failure to connect, and when: asked again soon after, it is the answer
        #: (a reconcile of many flywheels waits for an unreachable scheduler once, not each).
        self._failed: tuple[float, str] | None = None

    def client(self) -> Any:
        with self._lock:
            if self._client is not None and self._client.status != "running":
                self._close()
            if self._client is None:
                if self._failed is not None and \
                        time.monotonic() - self._failed[0] < RECONNECT_AFTER:
                    raise TransientError(self._failed[1])  # a new one: callers add to it
                try:
                    self._client = self._connect()
                except TransientError as exc:
                    self._failed = (time.monotonic(), exc.message)
                    raise
                self._failed = None
            return self._client

    def _connect(self) -> Any:
        from distributed import Client

        quiet()
        try:
            return Client(self.address, timeout=self.connect_timeout,  # type: ignore[no-untyped-call]
                          set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise TransientError(f"cannot reach the Dask scheduler at {self.address} (within "
                                 f"{self.connect_timeout:g}s): {_one_line(exc)}") from exc

    def slots(self) -> int:
        """How many tasks the cluster's workers run at once (their threads); at least 1."""
        try:
            threads: dict[str, int] = self.client().nthreads()
            return max(1, sum(threads.values()))
        except (OSError, TimeoutError) as exc:
            raise self._lost(exc) from exc

    def submit(self, function: Callable[[Any], Any], argument: Any, *, key: str) -> Any:
        """Run ``function(argument)`` on a worker as task ``key``. A key the scheduler holds
        already is that task: one computation however often it is asked for."""
        try:
            return self.client().submit(function, argument, key=key, pure=False)
        except (OSError, TimeoutError) as exc:
            raise self._lost(exc) from exc

    def result(self, future: Any, stop: Callable[[], bool]) -> Any:
        """The task's result, waited for; a stop request cancels it (:class:`Stopped`)."""
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError
        from distributed.comm.core import CommClosedError

        try:
            while True:
                try:
                    return future.result(timeout=POLL_SECONDS)
                except TimeoutError:
                    if stop():
                        future.cancel()
                        raise Stopped("stopped while the task ran on the cluster") from None
        except FutureCancelledError as exc:
            raise self._lost(exc) from exc
        except KilledWorker as exc:
            raise TransientError(f"the task's workers died each time it ran ({_one_line(exc)}); "
                                 "check the workers' memory and logs") from exc
        except (FlywheelError, Stopped):
            raise
        except CommClosedError as exc:
            raise self._lost(exc) from exc
        except OSError as exc:  # the system refused the worker a file operation: worth a retry
            raise TransientError(f"the task failed on its worker: {_one_line(exc)}") from exc
        finally:
            future.release()

    def _lost(self, exc: BaseException) -> TransientError:
        return TransientError(f"lost the Dask scheduler at {self.address}: {_one_line(exc)}; "
                              "the iteration is retried once it is back")

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._client is not None:
            # a lost scheduler: nothing is left to close cleanly
            with contextlib.suppress(Exception):
                self._client.close(timeout=2)
            self._client = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
