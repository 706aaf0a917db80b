"""Entry point of the pipeline stages; one error line on stderr and exit 1 on failure.

A file operation the system refused (a full disk, a file-size limit, permissions: see
:data:`reconciler.errors.ENVIRONMENT_ERRNOS`) exits with :data:`~reconciler.errors.ENVIRONMENT_EXIT`
instead, so the reconciler records the iteration as retryable without reading the text; so does
running out of memory (one line, never a traceback). Started
by a reconciler, the stage dies with it (:func:`reconciler.adapters.processes.die_with_reconciler`).
"""

from __future__ import annotations

import importlib
import signal
import sys

from reconciler.adapters.processes import die_with_reconciler
from reconciler.errors import (
    ENVIRONMENT_EXIT,
    FlywheelError,
    environment_failure,
    refused_operation,
)
from reconciler.failpoints import failpoint


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("prepare", "train", "evaluate"):
        print("usage: python -m reconciler.stages {prepare,train,evaluate} PARAMS.yaml",
              file=sys.stderr)
        return 2
    if argv is None:  # run as a process (not called from a test): watch the reconciler
        die_with_reconciler()
    # Past RLIMIT_FSIZE a write must fail with EFBIG (reported below), not kill the stage.
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        # Import only the stage asked for: prepare needs no scikit-learn (seconds of start-up).
        stage = importlib.import_module(f"reconciler.stages.{args[0]}")
        failpoint(f"stage:{args[0]}:started")
        stage.run(args[1])
    except MemoryError:  # a limit on the stage's memory (RLIMIT_AS, a cgroup): worth a retry
        print(f"error: the {args[0]} stage ran out of memory: it could not allocate more (raise "
              "its memory limit or free memory)", file=sys.stderr)
        return ENVIRONMENT_EXIT
    except (FlywheelError, OSError) as exc:
        if isinstance(exc.__cause__, MemoryError):  # "out of memory reading data/x.csv (…)"
            print(f"error: the {args[0]} stage: {exc}", file=sys.stderr)
            return ENVIRONMENT_EXIT
        refused = environment_failure(exc)
        if refused is not None:
            print(f"error: the {args[0]} stage: {refused_operation(refused)}", file=sys.stderr)
            return ENVIRONMENT_EXIT
        if not isinstance(exc, FlywheelError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    failpoint(f"stage:{args[0]}:done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
